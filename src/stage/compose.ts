import { Stream } from 'node:stream';
import { pipeline as streamPipeline } from 'node:stream/promises';

/** What `pipeline` takes last: the run's signal (an abort tears the pipeline down). */
export interface PipelineOptions {
  signal?: AbortSignal;
}

/** A stage of a pipeline: a stream (a kit stage, a Transform, a Writable sink) or an async generator function. */
// biome-ignore lint/suspicious/noExplicitAny: the stages of stream/promises.pipeline are typed per position there; here any stage goes.
export type PipelineStage = NodeJS.ReadWriteStream | NodeJS.WritableStream | ((source: AsyncIterable<any>, o: { signal: AbortSignal }) => any);

const isOptions = (x: unknown): x is PipelineOptions =>
  typeof x === 'object' && x !== null && !(x instanceof Stream) && !(Symbol.asyncIterator in x) && !(Symbol.iterator in x) && !('pipe' in x);

/**
 * `stream/promises.pipeline(source, ...stages, { signal })`, as every job composes its stages,
 * with one thing more: when it fails (or is aborted) it returns only once every stage has
 * closed, so no step is still running (writing a record, holding an ffmpeg) when the caller
 * goes on to clean up. Any stage of the kit also works in a plain `stream/promises.pipeline`.
 *
 * @example
 * await pipeline(Readable.from(items), decodeClips(), extractFeatures(model), sink, { signal });
 */
export async function pipeline(
  source: NodeJS.ReadableStream | AsyncIterable<unknown> | Iterable<unknown>,
  ...rest: Array<PipelineStage | PipelineOptions>
): Promise<void> {
  const last = rest[rest.length - 1];
  const options = isOptions(last) ? last : {};
  const stages = (isOptions(last) ? rest.slice(0, -1) : rest) as PipelineStage[];
  const streams = [source, ...stages];
  try {
    await streamPipeline(streams as unknown as NodeJS.ReadWriteStream[], options.signal ? { signal: options.signal } : {});
  } catch (err) {
    await Promise.all(
      streams.map((s) =>
        s instanceof Stream && (s as Stream & { closed?: boolean }).closed === false ? new Promise((resolve) => s.once('close', resolve)) : null,
      ),
    );
    throw err;
  }
}
