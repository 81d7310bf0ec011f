/**
 * clipstream/scale: many machines. Static partitions (rank/world), unit locks on a shared
 * folder, and the Redis queue with its workers.
 *
 * @module clipstream/scale
 */
export { describePartition, resolvePartition, shareOf, WHOLE, type Partition, type PartitionInput } from '../util/partition.js';
export { UnitLocks, type LockedPolicy } from '../util/unit-locks.js';
export { describeHolder, tryLock, waitForLock, type LockInfo, type LockOptions, type UnitLock } from '../util/lock.js';
export { addUnits, DEFAULT_QUEUE, queueStatus, redisConnection, type QueueStatus, type UnitJobData } from '../scale/queue.js';
export { PermanentUnitError, startWorker, type UnitRunner, type WorkerHandle, type WorkerOptions } from '../scale/worker.js';
export { ModelCache } from '../infer/model-cache.js';
export { isTransient } from '../errors.js';
