import type { WindowEvent } from '../events/window-event.js';
import type { Embedder } from '../updater/updater.js';

/**
 * Runs windows of equal length together. ONNX Runtime's output for a window changes in its last
 * bits with the padding, i.e. with the longest window of the batch it is run in; grouped by
 * length, a window is never padded, so its embedding depends on the window alone — not on which
 * other users share its batch. That is what makes a resumed backfill byte-identical to an
 * uninterrupted one even when it was killed half-way through writing a batch (the users already
 * written are skipped on resume, so the batch is re-run smaller). No padding is also less compute.
 */
export class LengthGroupedEmbedder implements Embedder {
  readonly #inner: Embedder;

  constructor(inner: Embedder) {
    this.#inner = inner;
  }

  async embed(windows: readonly (readonly WindowEvent[])[]): Promise<Float32Array[]> {
    const byLength = new Map<number, number[]>();
    windows.forEach((window, index) => {
      const group = byLength.get(window.length);
      if (group) group.push(index);
      else byLength.set(window.length, [index]);
    });
    const results: Float32Array[] = new Array(windows.length);
    await Promise.all(
      [...byLength.values()].map(async (indexes) => {
        const embeddings = await this.#inner.embed(indexes.map((index) => windows[index]!));
        indexes.forEach((index, k) => (results[index] = embeddings[k]!));
      }),
    );
    return results;
  }
}
