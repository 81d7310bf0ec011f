/**
 * Scoring shot boundaries against the shot zoo's truth (test/zoo/shots-zoo.ts), shared by
 * zoo-shots.test.ts and the bench: matching within a tolerance, F1 on hard cuts, and naming what
 * the recipe put at a frame (so every disagreement reads with the reason from the recipe).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ShotsTruth } from './shots-zoo.js';

export const PYTHON = '/usr/bin/python3';
export const REFERENCE = fileURLToPath(new URL('../../scripts/shots_reference.py', import.meta.url));
export const PYSCENEDETECT_SCRIPT = fileURLToPath(new URL('../../scripts/pyscenedetect_cuts.py', import.meta.url));

export interface RefFile {
  path: string;
  frames: number;
  fps: number;
  width: number;
  height: number;
  cuts: number[];
  scores?: number[];
  luma?: number[];
}

/** Runs a Python script that prints `{files: [...]}` for FILE arguments; rejects with its stderr. */
export function runPython<T>(script: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`${script} exited ${code}: ${err.slice(-3000)}`));
      else resolve(JSON.parse(Buffer.concat(out).toString('utf8')) as T);
    });
  });
}

/** scripts/shots_reference.py over `paths`, split over `jobs` processes. */
export async function reference(paths: string[], args: string[], jobs = 2): Promise<RefFile[]> {
  const chunks: string[][] = Array.from({ length: Math.min(jobs, paths.length) }, () => []);
  paths.forEach((p, i) => chunks[i % chunks.length]!.push(p));
  const parts = await Promise.all(chunks.map((c) => runPython<{ files: RefFile[] }>(REFERENCE, [...args, ...c])));
  const byPath = new Map(parts.flatMap((p) => p.files).map((f) => [f.path, f]));
  return paths.map((p) => byPath.get(p)!);
}

/** One-to-one matching of `found` to `truth` within ±tol frames (nearest first). */
export function matchFrames(truth: number[], found: number[], tol = 1): { matched: Array<[number, number]>; missed: number[]; extra: number[] } {
  const left = new Set(found);
  const matched: Array<[number, number]> = [];
  const missed: number[] = [];
  for (const t of truth) {
    let best: number | null = null;
    for (const f of left) if (Math.abs(f - t) <= tol && (best === null || Math.abs(f - t) < Math.abs(best - t))) best = f;
    if (best === null) missed.push(t);
    else {
      matched.push([t, best]);
      left.delete(best);
    }
  }
  return { matched, missed, extra: [...left].sort((a, b) => a - b) };
}

const within = (f: number, [a, b]: [number, number], pad: number) => f >= a - pad && f <= b + pad;

/** What the recipe put at frame `f`, for a boundary no hard cut explains. */
export function whatIsAt(t: ShotsTruth, f: number): { kind: 'dissolve' | 'fade' | 'flash' | 'pan' | 'subtitle' | 'shot'; note: string } {
  const d = t.dissolves.find((s) => within(f, s, 1));
  if (d) return { kind: 'dissolve', note: `inside the dissolve over frames ${d[0]}-${d[1]}` };
  const fd = t.fades.find((s) => within(f, s, 2));
  if (fd) return { kind: 'fade', note: `inside the fade through black over frames ${fd[0]}-${fd[1]}` };
  const fl = t.flashes.filter((x) => Math.abs(x - f) <= 1 || x === f - 1);
  if (fl.length) return { kind: 'flash', note: `at the camera flash (near-white frame${fl.length > 1 ? 's' : ''} ${fl.join(', ')}) inside one shot` };
  const shot = t.shots.find((s) => f >= s.first && f <= s.last);
  const p = t.pans.find((s) => within(f, s, 0));
  if (p) return { kind: 'pan', note: `inside the fast pan over frames ${p[0]}-${p[1]} (one shot)` };
  const s = t.subtitles.find((x) => within(f, x, 0));
  if (s) return { kind: 'subtitle', note: `inside the static shot with a moving subtitle, frames ${s[0]}-${s[1]}` };
  return { kind: 'shot', note: `inside the ${shot?.scene ?? '?'} shot over frames ${shot?.first}-${shot?.last}` };
}

/** Hard-cut counts of one file: detections inside a dissolve or fade are neither hits nor false cuts. */
export function hardCutScore(t: ShotsTruth, cuts: number[], tol = 1) {
  const m = matchFrames(t.cuts, cuts, tol);
  const gradual = m.extra.filter((f) => ['dissolve', 'fade'].includes(whatIsAt(t, f).kind));
  const falseCuts = m.extra.filter((f) => !gradual.includes(f));
  return { tp: m.matched.length, fn: m.missed.length, fp: falseCuts.length, missed: m.missed, falseCuts, gradual, matched: m.matched };
}

export const f1 = (tp: number, fp: number, fn: number) => (tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn));
