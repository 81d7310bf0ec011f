import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ClipstreamError } from '../errors.js';

/**
 * The published models the jobs use, by name: where each file is published, its size and
 * sha256 where known (null: not published; `models fetch` then records the one it saw), licence
 * and purpose. Checkpoints (`build`) are turned into ONNX by `models fetch` itself.
 */

export type ModelKind = 'face-detector' | 'visual' | 'audio' | 'matting';

/** One published file. */
export interface RegistryFile {
  file: string;
  url: string;
  /** Size in bytes; null where not known. */
  bytes: number | null;
  /** Full sha256; null where not published or known. */
  sha256: string | null;
  /** torch.hub convention: the file name carries the first hex digits of its sha256. */
  sha256Prefix?: string;
}

export interface RegistryModel {
  name: string;
  kind: ModelKind;
  purpose: string;
  licence: string;
  /** Project page the files come from. */
  source: string;
  files: RegistryFile[];
  /** The ONNX file the jobs run, inside the model's cache folder. */
  onnx: string;
  /** Checkpoints: how `models fetch` builds the ONNX model (as `models build`). */
  build?: { arch: 'vggish' | 'slowfast_r50'; weights: string; pca?: string; dataset: string };
  detectorFormat?: 'ultraface' | 'scrfd' | 'yunet';
}

const ULTRAFACE = 'https://github.com/Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB/raw/master/models/onnx';
const RVM = 'https://github.com/PeterL1n/RobustVideoMatting/releases/download/v1.0.0';
const VGGISH = 'https://github.com/harritaylor/torchvggish/releases/download/v0.1';

export const REGISTRY: readonly RegistryModel[] = [
  {
    name: 'ultraface-rfb-640',
    kind: 'face-detector',
    detectorFormat: 'ultraface',
    licence: 'MIT',
    purpose: 'face detection (UltraFace RFB, 640x480 input; the default real detector of `faces`)',
    source: 'https://github.com/Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB',
    files: [
      {
        file: 'version-RFB-640.onnx',
        url: `${ULTRAFACE}/version-RFB-640.onnx`,
        bytes: 1588012,
        sha256: '8f4c659275977e7a3bfbfa339a9c769ad793df50f9c0baa8c14b11baa1646430',
      },
    ],
    onnx: 'version-RFB-640.onnx',
  },
  {
    name: 'ultraface-rfb-320',
    kind: 'face-detector',
    detectorFormat: 'ultraface',
    licence: 'MIT',
    purpose: 'face detection (UltraFace RFB, 320x240 input: faster, misses small faces)',
    source: 'https://github.com/Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB',
    files: [
      {
        file: 'version-RFB-320.onnx',
        url: `${ULTRAFACE}/version-RFB-320.onnx`,
        bytes: 1270727,
        sha256: '34cd7e60aeff28744c657de7a3dc64e872d506741de66987f3426f2b79f88017',
      },
    ],
    onnx: 'version-RFB-320.onnx',
  },
  {
    name: 'scrfd-10g',
    kind: 'face-detector',
    detectorFormat: 'scrfd',
    licence: 'insightface pretrained models: non-commercial research only',
    purpose: 'face detection with 5 landmarks (SCRFD-10GF, insightface buffalo_l det_10g)',
    source: 'https://github.com/deepinsight/insightface/tree/master/model_zoo',
    files: [
      {
        file: 'det_10g.onnx',
        url: 'https://huggingface.co/public-data/insightface/resolve/main/models/buffalo_l/det_10g.onnx',
        bytes: 16923827,
        sha256: '5838f7fe053675b1c7a08b633df49e7af5495cee0493c7dcf6697200b85b5b91',
      },
    ],
    onnx: 'det_10g.onnx',
  },
  {
    name: 'scrfd-2.5g',
    kind: 'face-detector',
    detectorFormat: 'scrfd',
    licence: 'insightface pretrained models: non-commercial research only',
    purpose: 'face detection with 5 landmarks (SCRFD-2.5GF, insightface buffalo_m det_2.5g; file from a mirror, checksum not published)',
    source: 'https://github.com/deepinsight/insightface/tree/master/model_zoo',
    files: [
      { file: 'det_2.5g.onnx', url: 'https://github.com/yakhyo/face-reidentification/releases/download/v0.0.1/det_2.5g.onnx', bytes: null, sha256: null },
    ],
    onnx: 'det_2.5g.onnx',
  },
  {
    name: 'yunet',
    kind: 'face-detector',
    detectorFormat: 'yunet',
    licence: 'MIT',
    purpose: 'face detection with 5 landmarks (OpenCV Zoo YuNet 2023mar)',
    source: 'https://github.com/opencv/opencv_zoo/tree/main/models/face_detection_yunet',
    files: [
      {
        file: 'face_detection_yunet_2023mar.onnx',
        url: 'https://huggingface.co/opencv/face_detection_yunet/resolve/main/face_detection_yunet_2023mar.onnx',
        bytes: 232589,
        sha256: '8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4',
      },
    ],
    onnx: 'face_detection_yunet_2023mar.onnx',
  },
  {
    name: 'rvm-mobilenetv3',
    kind: 'matting',
    licence: 'GPL-3.0',
    purpose: 'video matting for `segments` (Robust Video Matting, MobileNetV3, float32)',
    source: 'https://github.com/PeterL1n/RobustVideoMatting',
    files: [
      {
        file: 'rvm_mobilenetv3_fp32.onnx',
        url: `${RVM}/rvm_mobilenetv3_fp32.onnx`,
        bytes: 14975696,
        sha256: '88d4531297118f595bf2fd60f6f566aec2e559393802d1f436c380f0cbbd2828',
      },
    ],
    onnx: 'rvm_mobilenetv3_fp32.onnx',
  },
  {
    name: 'rvm-resnet50',
    kind: 'matting',
    licence: 'GPL-3.0',
    purpose: 'video matting for `segments` (Robust Video Matting, ResNet50, float32: slower, finer edges)',
    source: 'https://github.com/PeterL1n/RobustVideoMatting',
    files: [
      {
        file: 'rvm_resnet50_fp32.onnx',
        url: `${RVM}/rvm_resnet50_fp32.onnx`,
        bytes: 107479165,
        sha256: '25db300fcb6ee27f941a1b52c97856e8d1f13c7f35817f81a612f89af0e8a85c',
      },
    ],
    onnx: 'rvm_resnet50_fp32.onnx',
  },
  {
    name: 'vggish',
    kind: 'audio',
    licence: 'Apache-2.0',
    purpose: 'audio features for `extract` (VGGish, YouTube-8M; torchvggish v0.1 weights + PCA, built to ONNX on fetch)',
    source: 'https://github.com/harritaylor/torchvggish',
    files: [
      { file: 'vggish-10086976.pth', url: `${VGGISH}/vggish-10086976.pth`, bytes: 288567937, sha256: null, sha256Prefix: '10086976' },
      { file: 'vggish_pca_params-970ea276.pth', url: `${VGGISH}/vggish_pca_params-970ea276.pth`, bytes: 181358, sha256: null, sha256Prefix: '970ea276' },
    ],
    onnx: 'vggish.onnx',
    build: { arch: 'vggish', weights: 'vggish-10086976.pth', pca: 'vggish_pca_params-970ea276.pth', dataset: 'YouTube-8M' },
  },
  {
    name: 'slowfast_8x8_r50',
    kind: 'visual',
    licence: 'Apache-2.0',
    purpose: 'visual features for `extract` (SlowFast 8x8 R50, Kinetics-400, Caffe2 checkpoint of the PySlowFast model zoo, built to ONNX on fetch)',
    source: 'https://github.com/facebookresearch/SlowFast/blob/main/MODEL_ZOO.md',
    // sha256 not published by PySlowFast; pinned by an independent project that downloaded the file (size unknown).
    files: [
      {
        file: 'SLOWFAST_8x8_R50.pkl',
        url: 'https://dl.fbaipublicfiles.com/pyslowfast/model_zoo/kinetics400/SLOWFAST_8x8_R50.pkl',
        bytes: null,
        sha256: '8988deb84b65226669eba1a5da6d14fd170dba374891b21439079c90dd80c026',
      },
    ],
    onnx: 'slowfast_8x8_r50.onnx',
    build: { arch: 'slowfast_r50', weights: 'SLOWFAST_8x8_R50.pkl', dataset: 'kinetics-400' },
  },
];

/** Face detectors `faces` takes by default when they are in the cache, best first. */
export const DEFAULT_FACE_DETECTORS = ['ultraface-rfb-640', 'ultraface-rfb-320', 'scrfd-10g', 'yunet', 'scrfd-2.5g'];

const normal = (name: string) => name.trim().toLowerCase().replace(/_/g, '-');

/**
 * A registry entry by name (case, `-` and `_` do not matter), or undefined.
 *
 * @example findModel('slowfast-8x8-r50')?.name // 'slowfast_8x8_r50'
 */
export function findModel(name: string, registry: readonly RegistryModel[] = REGISTRY): RegistryModel | undefined {
  return registry.find((m) => normal(m.name) === normal(name));
}

/** The model cache: `$CLIPSTREAM_HOME`, default `~/.cache/clipstream/models`. */
export function modelCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.CLIPSTREAM_HOME || join(homedir(), '.cache', 'clipstream', 'models');
}

/** Where a registry model's ONNX file lives once fetched. */
export function cachedModelPath(model: RegistryModel, env: NodeJS.ProcessEnv = process.env): string {
  return join(modelCacheDir(env), model.name, model.onnx);
}

/** The first face detector of DEFAULT_FACE_DETECTORS that is in the cache, or null. */
export function cachedFaceDetector(env: NodeJS.ProcessEnv = process.env): RegistryModel | null {
  for (const name of DEFAULT_FACE_DETECTORS) {
    const m = findModel(name)!;
    if (existsSync(cachedModelPath(m, env))) return m;
  }
  return null;
}

export interface ResolvedModel {
  /** The ONNX path to open (a registry model's cache path, or the argument as given). */
  path: string;
  /** The registry entry when the argument was a registry name. */
  model?: RegistryModel;
}

const KIND_WORDS: Record<ModelKind, string> = {
  'face-detector': 'face detector',
  visual: 'visual model',
  audio: 'audio model',
  matting: 'matting model',
};

/**
 * Resolves a job's model argument: a registry name becomes its file in the cache (an error
 * saying exactly how to fetch it when missing, or when the name is a model of another kind);
 * anything else is returned unchanged, to be read as the path it is.
 *
 * @example
 * resolveModel('ultraface-rfb-640', { kind: 'face-detector', option: '--detector' }).path
 * // ~/.cache/clipstream/models/ultraface-rfb-640/version-RFB-640.onnx
 */
export function resolveModel(nameOrPath: string, options: { kind: ModelKind; option?: string; env?: NodeJS.ProcessEnv }): ResolvedModel {
  const model = findModel(nameOrPath);
  if (!model) return { path: nameOrPath };
  const flag = options.option ? `${options.option}=${nameOrPath}: ` : '';
  if (model.kind !== options.kind) {
    const fits = REGISTRY.filter((m) => m.kind === options.kind)
      .map((m) => m.name)
      .join(', ');
    throw new ClipstreamError(
      'ERR_INVALID_OPTION',
      `${flag}${model.name} is a ${KIND_WORDS[model.kind]}, not a ${KIND_WORDS[options.kind]} (registry ${KIND_WORDS[options.kind]}s: ${fits})`,
      { where: { option: options.option } },
    );
  }
  const path = cachedModelPath(model, options.env);
  if (!existsSync(path)) {
    throw new ClipstreamError(
      'ERR_INVALID_OPTION',
      `${flag}model ${model.name} is not in the cache (${path}); fetch it with: clipstream models fetch ${model.name}`,
      { where: { option: options.option, file: path } },
    );
  }
  return { path, model };
}
