/**
 * clipstream/shards: webdataset tar shards in (local, remote, compressed), ACAV entries, bundling
 * clips into shards, and the feature shards extract writes (msgpack-numpy or JSON).
 *
 * @module clipstream/shards
 */
export type { ClipEntry, FeatureSet, ShardInfo, TarItem, TarSample, Tensor } from '../types.js';
export { expandShardPatterns } from '../shards/brace.js';
export { readShards, readTarShards, type ReadShardsOptions, type ReadTarOptions } from '../shards/tar-reader.js';
export { isRemoteShard, openShard, shardFileName, type ShardSourceOptions } from '../shards/shard-source.js';
export { joinEntries, readSidecar, sidecarLocation, type JoinEntriesOptions, type Sidecar } from '../shards/entry-join.js';
export { bundleClips, type BundledShard, type BundleOptions, type BundleSummary } from '../shards/bundle.js';
export { ACAV_CLIP_SECONDS, parseClipStem } from '../shards/clip-name.js';
export {
  completedKeys,
  FeatureShardWriter,
  readFeatureShard,
  shardOutputPath,
  writeFeatureShards,
  type FeatureShardFormat,
  type FeatureShardWriterOptions,
  type ShardProblem,
  type ShardSummary,
} from '../sinks/feature-shard.js';
export { decodeFeatureRecord, encodeFeatureRecord, packMsgpackNumpy, unpackMsgpackNumpy } from '../sinks/msgpack-numpy.js';
