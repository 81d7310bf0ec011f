import type { CommandSpec } from '../util/args.js';
import { modelsBuildSpec } from './models-command.js';
import { clipsSpec } from './clips-command.js';
import { facesSpec } from './faces-command.js';
import { queueSpec, workerSpec } from './queue-command.js';
import { segmentsSpec } from './segments-command.js';
import { extractSpec } from './extract-command.js';
import { dedupSpec } from './dedup-command.js';
import { semdedupSpec } from './semdedup-command.js';
import { reportSpec } from './report-command.js';
import { scoreSpec } from './score-command.js';

export { extractSpec };

export const bundleSpec: CommandSpec = {
  name: 'bundle',
  summary: 'a folder of clips named {id}_{start}.mp4 becomes webdataset tar shards with shard-NNNNNN.json beside each.',
  usage: 'clipstream bundle --input_dir=<clips> --out_dir=<dir> [--shard_size=100]',
  options: [
    { name: 'input_dir', type: 'string', description: 'Folder of clips named {id}_{start}.mp4', required: true },
    { name: 'out_dir', type: 'string', description: 'Folder for shard-NNNNNN.tar and shard-NNNNNN.json', required: true, library: 'outputDir' },
    { name: 'shard_size', type: 'integer', description: 'Clips per shard', default: 100 },
    { name: 'start_index', type: 'integer', description: 'Number of the first shard', default: 0 },
    { name: 'overwrite', type: 'boolean', description: 'Rewrite shards that exist', default: false },
    { name: 'keep_list', type: 'string', description: "A keep list (dedup's keep.txt): clips it does not name are left out and counted as skipped" },
  ],
  examples: ['clipstream bundle --input_dir=my_clips --out_dir=shards --shard_size=100'],
};

export const commands: CommandSpec[] = [
  extractSpec,
  bundleSpec,
  clipsSpec,
  scoreSpec,
  facesSpec,
  segmentsSpec,
  dedupSpec,
  semdedupSpec,
  modelsBuildSpec,
  queueSpec,
  workerSpec,
  reportSpec,
];
