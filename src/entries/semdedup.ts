/**
 * clipstream/semdedup: semantic dedup (SemDeDup, as NeMo Curator runs it) over the embeddings of
 * feature shards: the job, and its parts for your own use: the float16 spill read in bounded
 * chunks, the seeded k-means, the within-cluster rule, the matrix-product engine.
 *
 * @module clipstream/semdedup
 */
export { semdedup, type SemdedupOptions, type SemdedupReport } from '../jobs/semdedup.js';
export { resolveSemdedupOptions, clusterUnits, type ResolvedSemdedupOptions } from '../semdedup/options.js';
export { SpillReader, SpillWriter, decodeHalfRows, encodeHalfRow } from '../semdedup/spill.js';
export { kmeansPlusPlus, lloyd, assignAll, type LloydResult } from '../semdedup/kmeans.js';
export { semdedupCluster, type ClusterVerdict, type KeepRule } from '../semdedup/cluster.js';
export { openGemm, type Gemm, type GemmEngine } from '../semdedup/gemm.js';
