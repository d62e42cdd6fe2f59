import { type SequenceBatch, timeBucket } from '../../model/features.js';
import type { WindowEvent } from '../../events/window-event.js';

/**
 * The first buildSequenceBatch (a BigInt per cell), kept as the baseline that model.bench.ts
 * measures the current one against, and checks it byte for byte.
 */
export function buildSequenceBatchBigInt(windows: readonly (readonly WindowEvent[])[], queryTokens: number): SequenceBatch {
  const batchSize = windows.length;
  const timeSteps = Math.max(1, ...windows.map((window) => window.length));
  const cells = batchSize * timeSteps;
  const batch: SequenceBatch = {
    batchSize,
    timeSteps,
    queryTokens,
    itemIds: new BigInt64Array(cells),
    eventKinds: new BigInt64Array(cells),
    queryTokenIds: new BigInt64Array(cells * queryTokens),
    gapBuckets: new BigInt64Array(cells),
    ageBuckets: new BigInt64Array(cells),
  };
  windows.forEach((window, row) => {
    const newest = window[window.length - 1]?.eventTimeMs ?? 0;
    const padding = timeSteps - window.length;
    window.forEach((event, index) => {
      const cell = row * timeSteps + padding + index;
      const previous = window[index - 1];
      batch.itemIds[cell] = BigInt(event.itemId);
      batch.eventKinds[cell] = BigInt(event.kind);
      batch.gapBuckets[cell] = BigInt(previous ? timeBucket(event.eventTimeMs - previous.eventTimeMs) : 1);
      batch.ageBuckets[cell] = BigInt(timeBucket(newest - event.eventTimeMs));
      for (let k = 0; k < event.queryTokens.length && k < queryTokens; k++) {
        batch.queryTokenIds[cell * queryTokens + k] = BigInt(event.queryTokens[k] ?? 0);
      }
    });
  });
  return batch;
}

/** True when two batches hold the same shapes and bytes. */
export function sameBatch(a: SequenceBatch, b: SequenceBatch): boolean {
  if (a.batchSize !== b.batchSize || a.timeSteps !== b.timeSteps || a.queryTokens !== b.queryTokens) return false;
  const keys = ['itemIds', 'eventKinds', 'queryTokenIds', 'gapBuckets', 'ageBuckets'] as const;
  return keys.every((key) => Buffer.from(a[key].buffer).equals(Buffer.from(b[key].buffer)));
}
