import type { CommandSpec } from './args.js';
import { modelsBuildSpec } from './models-command.js';
import { clipsSpec } from './clips-command.js';
import { facesSpec } from './faces-command.js';
import { partitionOptions } from '../scale/cli-options.js';
import { queueSpec, workerSpec } from './queue-command.js';
import { segmentsSpec } from './segments-command.js';

export const extractSpec: CommandSpec = {
  name: 'extract',
  summary: 'tar shards of clips in, one feature shard per tar shard out (SlowFast-style visual + VGGish-style audio features).',
  usage: 'clipstream extract --tar_path="<dir>/shard-{000000..000099}.tar" --out_path=<dir> [options]',
  options: [
    { name: 'tar_path', type: 'string[]', description: 'Tar shard path or brace pattern; repeat for several patterns', required: true },
    { name: 'out_path', type: 'string', description: 'Folder for feature shards and the run log', required: true },
    { name: 'format', type: 'string', description: 'msgpack (msgpack_numpy-compatible) or json', default: 'msgpack' },
    { name: 'model_dir', type: 'string', description: 'Folder holding the models (default: the shipped models/)' },
    { name: 'visual_model', type: 'string', description: "Visual ONNX model (file in model_dir or a path); 'none' to skip", default: 'slowfast_small.onnx' },
    { name: 'audio_model', type: 'string', description: "Audio ONNX model (file in model_dir or a path); 'none' to skip", default: 'vggish_small.onnx' },
    { name: 'device', type: 'string', description: 'auto, cpu, cuda or cuda:N (CUDA falls back to CPU with a warning)', default: 'auto' },
    { name: 'batch_size', type: 'integer', description: 'Largest model batch; the actual size is set by backpressure', default: 8 },
    { name: 'num_workers', type: 'integer', description: 'ffmpeg decoders running at once', default: 2 },
    { name: 'threads', type: 'integer', description: 'ONNX Runtime threads per model (default: all cores)', library: 'intraOpThreads' },
    { name: 'crop', type: 'string', description: "Spatial crop: 'top-left' (ACAV100M spatial index 0) or 'center'", default: 'top-left' },
    {
      name: 'resize',
      type: 'string',
      description: "exact (RGB first, torch bilinear: the reference recipe) or fast (ffmpeg's scaler on YUV, cheaper, not equal)",
      default: 'exact',
    },
    { name: 'window_seconds', type: 'number', description: 'Seconds decoded from the start of each clip', default: 10 },
    {
      name: 'min_duration',
      type: 'number',
      description: 'Clips shorter than this are skipped (default: a quarter of the window)',
      library: 'minDurationSeconds',
    },
    { name: 'decode_timeout', type: 'number', description: 'Seconds without output before a hung ffmpeg is killed', default: 30, library: 'stallTimeoutMs' },
    { name: 'overwrite', type: 'boolean', description: 'Recompute shards whose output exists', default: false },
    { name: 'quiet', type: 'boolean', description: 'No progress display', default: false },
    { name: 'verbose', type: 'boolean', description: 'Also say when --device=auto finds no CUDA and uses the CPU', default: false },
    ...partitionOptions,
  ],
  examples: [
    'clipstream extract --tar_path="fixtures/shards/shard-{000000..000001}.tar" --out_path=out',
    'clipstream extract --tar_path data/shard-{000000..000099}.tar --out_path feats --format json --device cuda:0',
  ],
};

export const bundleSpec: CommandSpec = {
  name: 'bundle',
  summary: 'a folder of clips named {id}_{start}.mp4 becomes webdataset tar shards with shard-NNNNNN.json beside each.',
  usage: 'clipstream bundle --input_dir=<clips> --out_dir=<dir> [--shard_size=100]',
  options: [
    { name: 'input_dir', type: 'string', description: 'Folder of clips named {id}_{start}.mp4', required: true },
    { name: 'out_dir', type: 'string', description: 'Folder for shard-NNNNNN.tar and shard-NNNNNN.json', required: true },
    { name: 'shard_size', type: 'integer', description: 'Clips per shard', default: 100 },
    { name: 'start_index', type: 'integer', description: 'Number of the first shard', default: 0 },
    { name: 'overwrite', type: 'boolean', description: 'Rewrite shards that exist', default: false },
  ],
  examples: ['clipstream bundle --input_dir=my_clips --out_dir=shards --shard_size=100'],
};

export const commands: CommandSpec[] = [extractSpec, bundleSpec, clipsSpec, facesSpec, segmentsSpec, modelsBuildSpec, queueSpec, workerSpec];
