/**
 * The jobs the queue can carry, by name: `clipstream queue add <job>` and `clipstream worker`
 * know a job only through its `JobDefinition` (src/run/job-definition.ts), so a job joins the
 * queue by being listed here.
 *
 * Adding a job is one import line and its name in `DEFINITIONS`:
 *   import { clipsJob } from './clips-command.js';
 */
import type { ExtractOptions, ExtractReport, ShardLog } from '../jobs/extract.js';
import { extract } from '../jobs/extract.js';
import type { JobDefinition } from '../run/job-definition.js';
import type { JobName, JobReport, UnitResult } from '../run/runner.js';
import { WHOLE } from '../scale/partition.js';
import { expandShardUrls } from '../shards/shard-source.js';
import { defaultWarningHandler, type WarningHandler } from '../types.js';
import { extractSpec } from './commands.js';
import { extractOptionsFromArgs } from './main.js';
import { clipsJob } from './clips-command.js';
import { facesJob } from './faces-command.js';
import { segmentsJob } from './segments-command.js';

/** What a shard's status means as a unit result. */
function shardUnit(s: ShardLog, warnings: readonly string[]): UnitResult {
  const base = { unit: s.url, status: s.status, shard: s.shard, output: s.output, written: s.written, skipped: s.skipped.length, failed: s.failed.length };
  const summary = `${s.status}, ${s.written} records, ${s.skipped.length} skipped, ${s.failed.length} failed${s.tarError ? `; ${s.tarError}` : ''}`;
  if (s.status === 'missing') {
    return { ...base, outcome: 'failed', permanent: true, error: warnings.find((w) => w.includes(s.url)) ?? `shard ${s.url} is missing`, summary };
  }
  // The shard's bytes stopped coming (URL down, pipe: failed): its journal is kept, and a retry resumes it.
  if (s.status === 'failed (source)') return { ...base, outcome: 'failed', error: s.tarError ?? `shard ${s.url} could not be read`, summary };
  if (s.status.startsWith('skipped')) return { ...base, outcome: 'skipped', ...(s.lockedBy ? { lockedBy: s.lockedBy } : {}), summary };
  return { ...base, outcome: 'done', summary };
}

/** extract's report in the runner's shape (one unit per shard). */
function extractJobReport(r: ExtractReport, o: ExtractOptions, warnings: readonly string[]): JobReport {
  const units = r.shards.map((s) => shardUnit(s, warnings));
  const count = (k: UnitResult['outcome']) => units.filter((u) => u.outcome === k).length;
  return {
    job: 'extract',
    logPath: r.logPath,
    partition: o.partition ?? WHOLE,
    units,
    done: count('done'),
    skipped: count('skipped'),
    failed: count('failed'),
    items: { done: r.clipsWritten, failed: r.clipsFailed, skipped: r.clipsSkipped },
    seconds: r.seconds,
  };
}

/**
 * `extract` as a JobDefinition: units are the expanded shard URLs. (An adapter over today's
 * extract(); the job's own definition replaces it once extract runs on the job runner.)
 */
export const extractJob: JobDefinition<ExtractOptions> = {
  name: 'extract',
  spec: extractSpec,
  optionsFromArgs: extractOptionsFromArgs,
  pathArgs: ['tar_path', 'out_path', 'model_dir', 'visual_model', 'audio_model'],
  async listUnits(options) {
    return expandShardUrls(options.tarPath);
  },
  async run(options) {
    const { only, ...rest } = options;
    const warnings: string[] = [];
    const forward: WarningHandler | undefined = rest.onWarning;
    const report = await extract({
      ...rest,
      tarPath: only ? [...only] : rest.tarPath,
      onWarning: (w) => {
        warnings.push(w.message);
        (forward ?? defaultWarningHandler)(w);
      },
    });
    return { ...report, run: extractJobReport(report, rest, warnings) };
  },
};

// biome-ignore lint/suspicious/noExplicitAny: each definition has its own options type; the queue only passes them through
const DEFINITIONS: JobDefinition<any>[] = [extractJob, clipsJob, facesJob, segmentsJob];

/** Every job the queue can run, by name; a job not (yet) defined is absent. */
// biome-ignore lint/suspicious/noExplicitAny: see DEFINITIONS
export const JOB_DEFINITIONS: Partial<Record<JobName, JobDefinition<any>>> = Object.fromEntries(DEFINITIONS.map((d) => [d.name, d]));
