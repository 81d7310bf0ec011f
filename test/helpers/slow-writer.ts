/**
 * Child process for the kill-and-resume tests: writes the fixture shard's samples slowly,
 * in shuffled order, printing `ack N` once the Nth sample has reached the journal.
 * It never sends the ShardEnd unless `--end` is given, so the parent decides when to SIGKILL.
 *
 * Usage: node --import tsx test/helpers/slow-writer.ts <outputDir> <samples> <delayMs> [--end]
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { writeFeatureShards } from '../../src/sinks/feature-shard.js';
import { makeSample, shardEnd, shuffled } from './feature-fixtures.js';

const [outputDir, samplesArg, delayArg, endFlag] = process.argv.slice(2);
const n = Number(samplesArg);
const delay = Number(delayArg);
// syncEvery 1: the kill tests are about process death, but exercise the fsync path too.
const writer = writeFeatureShards({ outputDir, syncEvery: 1, onWarning: (w) => process.stderr.write(`warning: ${w.message}\n`) });
process.stdout.write('ready\n');
await sleep(delay);
let acked = 0;
for (const i of shuffled(n)) {
  await new Promise<void>((resolve, reject) => writer.write(makeSample(i), (err) => (err ? reject(err) : resolve())));
  process.stdout.write(`ack ${++acked}\n`);
  await sleep(delay);
}
if (endFlag === '--end') {
  writer.end(shardEnd(n));
  await writer.done;
  process.stdout.write('done\n');
} else {
  process.stdout.write('waiting\n');
  await sleep(60_000);
}
