import { type SequenceBatch, timeBucket, type WindowEvent } from '../../model/features.js';

/**
 * A candidate replacement for model/features.ts buildSequenceBatch, measured beside it by
 * model.bench.ts (and checked byte-for-byte against it there). Same layout and values, but every
 * int64 cell is written as its low 32-bit word through an Int32Array view of the BigInt64Array's
 * buffer (little-endian; all ids and buckets are < 2^31 and ≥ 0, so the high word stays 0): no
 * BigInt allocation per cell, and no closure per event.
 */
export function buildSequenceBatchInt32(windows: readonly (readonly WindowEvent[])[], queryTokens: number): SequenceBatch {
  const batchSize = windows.length;
  let timeSteps = 1;
  for (const window of windows) if (window.length > timeSteps) timeSteps = window.length;
  const cells = batchSize * timeSteps;
  const itemIds = new BigInt64Array(cells);
  const eventKinds = new BigInt64Array(cells);
  const queryTokenIds = new BigInt64Array(cells * queryTokens);
  const gapBuckets = new BigInt64Array(cells);
  const ageBuckets = new BigInt64Array(cells);
  const items32 = new Int32Array(itemIds.buffer);
  const kinds32 = new Int32Array(eventKinds.buffer);
  const tokens32 = new Int32Array(queryTokenIds.buffer);
  const gaps32 = new Int32Array(gapBuckets.buffer);
  const ages32 = new Int32Array(ageBuckets.buffer);
  for (let row = 0; row < batchSize; row++) {
    const window = windows[row]!;
    const length = window.length;
    if (length === 0) continue;
    const newest = window[length - 1]!.eventTimeMs;
    const first = row * timeSteps + (timeSteps - length);
    let previousMs = Number.NaN;
    for (let index = 0; index < length; index++) {
      const event = window[index]!;
      const cell = first + index;
      const lo = cell * 2;
      items32[lo] = event.itemId;
      kinds32[lo] = event.kind;
      gaps32[lo] = index === 0 ? 1 : timeBucket(event.eventTimeMs - previousMs);
      ages32[lo] = timeBucket(newest - event.eventTimeMs);
      previousMs = event.eventTimeMs;
      const tokens = event.queryTokens;
      const n = tokens.length < queryTokens ? tokens.length : queryTokens;
      for (let k = 0; k < n; k++) tokens32[(cell * queryTokens + k) * 2] = tokens[k] ?? 0;
    }
  }
  return { batchSize, timeSteps, queryTokens, itemIds, eventKinds, queryTokenIds, gapBuckets, ageBuckets };
}

/** True when two batches hold the same shapes and bytes. */
export function sameBatch(a: SequenceBatch, b: SequenceBatch): boolean {
  if (a.batchSize !== b.batchSize || a.timeSteps !== b.timeSteps || a.queryTokens !== b.queryTokens) return false;
  const keys = ['itemIds', 'eventKinds', 'queryTokenIds', 'gapBuckets', 'ageBuckets'] as const;
  return keys.every((key) => Buffer.from(a[key].buffer).equals(Buffer.from(b[key].buffer)));
}
