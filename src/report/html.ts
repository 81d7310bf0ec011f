/**
 * HTML for the report: escaping, the page shell, links, and the inline SVG charts (a histogram,
 * a timeline). No script, no external URL: a page opens from disk as it is.
 */

/** Escapes text for HTML content and double-quoted attributes. */
export function esc(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** A relative URL for a relative file path: each segment percent-encoded, so quotes, `#`, `?` and unicode stay a path. */
export function href(relPath: string): string {
  return relPath
    .split('/')
    .map((s) => (s === '..' || s === '.' ? s : encodeURIComponent(s)))
    .join('/');
}

const STYLE = `
body{font:14px/1.4 DejaVu Sans,Arial,sans-serif;margin:16px 24px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 8px}h2{font-size:18px;margin:24px 0 8px;border-bottom:1px solid #ccc}h3{font-size:15px;margin:14px 0 6px}
a{color:#1558b0}
.counts{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0}
.counts div{background:#fff;border:1px solid #ddd;border-radius:6px;padding:6px 12px}
.counts b{display:block;font-size:20px}
table{border-collapse:collapse;background:#fff;margin:6px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top;max-width:520px;overflow-wrap:anywhere}
th{background:#f0f0f0}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{background:#fff;border:1px solid #ccc;border-radius:6px;padding:6px;width:220px;font-size:12px;overflow-wrap:anywhere}
.card.filtered{border-color:#d33;background:#fff5f5}
.card.kept{border-color:#3a3}
.card img,.strip img{display:block;max-width:100%;image-rendering:auto}
.card .noprev{height:60px;background:#eee;color:#888;display:flex;align-items:center;justify-content:center}
.tag{display:inline-block;border-radius:3px;padding:0 5px;font-size:11px;color:#fff;background:#3a3}
.tag.filtered{background:#d33}.tag.report{background:#888}
.group{display:flex;gap:10px;align-items:flex-start;background:#fff;border:1px solid #ddd;padding:6px;margin:6px 0;overflow-x:auto}
.more{color:#a60;font-weight:bold;margin:6px 0}
.fail{color:#b00}
.charts{display:flex;flex-wrap:wrap;gap:14px}
.chart{background:#fff;border:1px solid #ddd;padding:4px}
.strip{margin:4px 0}
nav{margin:6px 0 12px}
`;

/** A whole page: `root` is the relative path back to the report folder ('' or '../'). */
export function page(title: string, body: string, root = ''): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<link rel="stylesheet" href="${root}assets/report.css"></head>
<body>
<nav><a href="${root}index.html">report index</a></nav>
${body}
</body></html>
`;
}

export const STYLESHEET = STYLE;

/** Counts shown as boxes; each value carries `data-count="<name>"` for readers (and the tests). */
export function counts(items: [name: string, label: string, value: number][]): string {
  return `<div class="counts">${items.map(([name, label, value]) => `<div><b data-count="${esc(name)}">${value}</b>${esc(label)}</div>`).join('')}</div>`;
}

/** A fixed-bin histogram of values in [lo, hi], accumulated one value at a time. */
export class Histogram {
  readonly bins: number[];
  count = 0;
  constructor(
    readonly name: string,
    readonly lo: number,
    readonly hi: number,
    nbins = 20,
  ) {
    this.bins = new Array<number>(hi > lo ? nbins : 1).fill(0);
  }
  add(v: number): void {
    if (!Number.isFinite(v)) return;
    const n = this.bins.length;
    const i = this.hi > this.lo ? Math.min(n - 1, Math.max(0, Math.floor(((v - this.lo) / (this.hi - this.lo)) * n))) : 0;
    this.bins[i]!++;
    this.count++;
  }
  svg(): string {
    const W = 300;
    const H = 120;
    const n = this.bins.length;
    const max = Math.max(1, ...this.bins);
    const bw = W / n;
    const bars = this.bins
      .map((c, i) => {
        const h = Math.round((c / max) * (H - 30));
        const lo = this.lo + ((this.hi - this.lo) * i) / n;
        const hi = this.lo + ((this.hi - this.lo) * (i + 1)) / n;
        return `<rect x="${(i * bw + 1).toFixed(1)}" y="${H - 16 - h}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${h}" fill="#4a7fc1"><title>${esc(
          `${fmt(lo)} – ${fmt(hi)}: ${c}`,
        )}</title></rect>`;
      })
      .join('');
    return `<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" data-histogram="${esc(this.name)}" data-total="${this.count}">
<text x="4" y="12" font-size="11">${esc(this.name)} (n=${this.count}, max bin ${max})</text>${bars}
<text x="2" y="${H - 3}" font-size="10">${esc(fmt(this.lo))}</text><text x="${W - 2}" y="${H - 3}" font-size="10" text-anchor="end">${esc(fmt(this.hi))}</text></svg>`;
  }
}

/** A number in a few significant digits. */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(4)));
}

export interface TimelineSpan {
  start: number;
  end: number;
  label: string;
  kind: 'shot' | 'clip' | 'filtered';
  link?: string;
}

/** A timeline of one video in seconds: a row of shots above a row of clips (kept green, filtered red). */
export function timelineSvg(duration: number, spans: Iterable<TimelineSpan>, note = ''): string {
  const W = 900;
  const H = 64;
  const d = duration > 0 ? duration : 1;
  const x = (t: number) => Math.max(0, Math.min(W, (t / d) * W));
  const rects: string[] = [];
  for (const s of spans) {
    const y = s.kind === 'shot' ? 6 : 30;
    const fill = s.kind === 'shot' ? '#9aa7b8' : s.kind === 'clip' ? '#3a3' : '#d33';
    const r = `<rect x="${x(s.start).toFixed(1)}" y="${y}" width="${Math.max(1, x(s.end) - x(s.start) - 1).toFixed(1)}" height="20" fill="${fill}" data-kind="${s.kind}"><title>${esc(s.label)}</title></rect>`;
    rects.push(s.link ? `<a href="${esc(s.link)}">${r}</a>` : r);
  }
  const ticks: string[] = [];
  for (let i = 0; i <= 10; i++)
    ticks.push(
      `<text x="${((i * W) / 10).toFixed(0)}" y="${H - 2}" font-size="9" text-anchor="${i === 0 ? 'start' : i === 10 ? 'end' : 'middle'}">${fmt((d * i) / 10)}s</text>`,
    );
  return `<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}"><rect x="0" y="0" width="${W}" height="${H - 12}" fill="#f4f4f4"/>${rects.join('')}${ticks.join('')}</svg>${
    note ? `<div class="more">${esc(note)}</div>` : ''
  }`;
}

/** A table of rows (escaped), with a header. */
export function table(columns: readonly string[], rows: Iterable<Record<string, unknown>>, attrs = ''): string {
  const body: string[] = [];
  for (const r of rows) body.push(`<tr>${columns.map((c) => `<td>${esc(r[c])}</td>`).join('')}</tr>`);
  return `<table ${attrs}><tr>${columns.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>${body.join('')}</table>`;
}

/** The visible note for what a capped list leaves out. */
export function moreNote(n: number, what: string): string {
  return n > 0 ? `<div class="more" data-more="${n}">${n} more ${esc(what)} not shown</div>` : '';
}
