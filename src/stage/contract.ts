/**
 * Stages say what they need on the items they receive and what they add (or drop), so a
 * pipeline in the wrong order fails when it is built, with a message naming both stages,
 * instead of failing on every sample an hour in.
 *
 * @example
 * const decode = declareStage(decodeClips(opts), { name: 'decode', needs: ['files', 'entry'], adds: ['video', 'audio'], drops: ['files'] });
 * const stages = checkStages([readShards(urls), decode, extractFeatures(visual)]); // throws if out of order
 * await pipeline(stages);
 */
import { ClipstreamError } from '../errors.js';

export interface StageContract {
  /** How messages name the stage: `decode`, `detect faces`. */
  name: string;
  /** Fields an item must carry when it reaches this stage. */
  needs?: readonly string[];
  /** Fields this stage puts on the items it passes on. */
  adds?: readonly string[];
  /** Fields this stage consumes and takes off (heavy buffers). */
  drops?: readonly string[];
}

const CONTRACT = Symbol.for('clipstream.stageContract');

/** Attaches a contract to a stage (any object: a Duplex, a Transform, an async generator function); returns the stage. */
export function declareStage<S extends object>(stage: S, contract: StageContract): S {
  Object.defineProperty(stage, CONTRACT, { value: contract, enumerable: false, configurable: true });
  return stage;
}

/** The contract a stage was declared with, if any. */
export function contractOf(stage: unknown): StageContract | undefined {
  return stage !== null && (typeof stage === 'object' || typeof stage === 'function') ? (stage as { [CONTRACT]?: StageContract })[CONTRACT] : undefined;
}

/**
 * Checks, in order, that every field a declared stage needs was added by a stage before it
 * (or is in `initial`, what the source's items carry) and not dropped since. Stages without a
 * contract pass fields through. Throws ERR_PIPELINE naming the stage, the field and, where one
 * exists, the stage that adds it later or dropped it earlier. Returns `stages` for chaining.
 */
export function checkStages<T extends readonly unknown[]>(stages: T, initial: readonly string[] = []): T {
  const have = new Map<string, string>(initial.map((f) => [f, 'the source'] as const));
  const dropped = new Map<string, string>();
  const contracts = stages.map(contractOf);
  contracts.forEach((c, i) => {
    if (!c) return;
    for (const field of c.needs ?? []) {
      if (have.has(field)) continue;
      const by = dropped.get(field);
      if (by) throw bad(`stage '${c.name}' needs '${field}', but stage '${by}' before it drops it`);
      const later = contracts.slice(i + 1).find((d) => d?.adds?.includes(field));
      if (later) throw bad(`stage '${c.name}' needs '${field}', which stage '${later.name}' adds only after it: put '${later.name}' before '${c.name}'`);
      throw bad(`stage '${c.name}' needs '${field}', which no stage before it adds${have.size > 0 ? ` (items carry: ${[...have.keys()].join(', ')})` : ''}`);
    }
    for (const field of c.drops ?? []) {
      have.delete(field);
      dropped.set(field, c.name);
    }
    for (const field of c.adds ?? []) {
      have.set(field, c.name);
      dropped.delete(field);
    }
  });
  return stages;
}

function bad(message: string): ClipstreamError {
  return new ClipstreamError('ERR_PIPELINE', `pipeline out of order: ${message}`);
}
