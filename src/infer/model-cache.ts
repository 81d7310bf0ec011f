/**
 * Models a long-lived process (a queue worker) keeps open across units: opening a model costs
 * about as much as extracting a small shard, so a worker that reopened both per unit would
 * spend much of its time loading. Extractors take concurrent runs (the worker thread queues
 * them), so units running at once share one.
 */
import { Extractor, type ExtractorOptions } from './extractor.js';

export class ModelCache {
  readonly #open = new Map<string, Promise<Extractor>>();

  /** The model at `path` with these session options, opened on first use. */
  load(path: string, options: ExtractorOptions): Promise<Extractor> {
    const key = JSON.stringify([path, options.device ?? 'auto', options.intraOpThreads ?? null, options.worker ?? true, options.spin ?? false]);
    let p = this.#open.get(key);
    if (!p) {
      p = Extractor.load(path, options);
      // A model that failed to open is tried again by the next unit, not cached as failed.
      p.catch(() => this.#open.delete(key));
      this.#open.set(key, p);
    }
    return p;
  }

  async closeAll(): Promise<void> {
    const all = [...this.#open.values()];
    this.#open.clear();
    for (const p of all) await (await p.catch(() => null))?.close();
  }
}
