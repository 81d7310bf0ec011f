import { makeReport } from '../report/report.js';
import type { CommandSpec } from '../util/args.js';

export const reportSpec: CommandSpec = {
  name: 'report',
  summary: "a static HTML report (opens from disk: no server, no network) of any job's output folder: clips, extract, faces, segments.",
  usage: 'clipstream report OUT_DIR [--out=OUT_DIR/report] [options]',
  options: [
    { name: 'output_dir', type: 'string', description: "The job's output folder (also the first word after 'report')", required: true, library: 'outputDir' },
    { name: 'out', type: 'string', description: 'Where the report goes (default: OUT_DIR/report)', library: 'reportDir' },
    { name: 'page_size', type: 'integer', description: 'Clips or face clips per page', default: 100 },
    { name: 'max_videos', type: 'integer', description: 'Videos that get a page; the others are counted, with a note', default: 500 },
    { name: 'max_pages_per_video', type: 'integer', description: 'Pages per video; the clips past them are counted, with a note', default: 10 },
    { name: 'max_rows', type: 'integer', description: 'Rows listed for failures, span issues, duplicate groups and such; the rest are counted', default: 200 },
    {
      name: 'max_previews_made',
      type: 'integer',
      description: 'Previews the report makes itself (a few frames decoded by ffmpeg) for clips that have none; 0 for none',
      default: 2000,
    },
  ],
  examples: ['clipstream report out/clips', 'clipstream report out/faces --out=faces-report'],
};

export async function runReport(args: Record<string, unknown>, signal: AbortSignal): Promise<number> {
  const summary = await makeReport({
    outputDir: args.output_dir as string,
    reportDir: args.out as string | undefined,
    pageSize: args.page_size as number,
    maxVideos: args.max_videos as number,
    maxPagesPerVideo: args.max_pages_per_video as number,
    maxRows: args.max_rows as number,
    maxPreviewsMade: args.max_previews_made as number,
    signal,
    onWarning: (m) => process.stderr.write(`clipstream ${m}\n`),
  });
  const found = summary.sections.length ? summary.sections.join(', ') : 'no job output';
  process.stderr.write(`clipstream report: ${found}; ${summary.previewsMade} preview(s) made by the report\n`);
  process.stdout.write(`${summary.index}\n`);
  return 0;
}
