/**
 * Windows → model tensors, the window part of docs/model-contract.md (`taste.features.v1`): time
 * buckets, window order and merge, and the int64 inputs. The per-event features are
 * events/featurization.ts's. Python training implements the same spec
 * (training/taste_training/features.py); model/testdata/feature_vectors.json keeps the two identical.
 */
import type { WindowEvent } from '../events/window-event.js';

/** Item ids the vocabulary reserves (items.tsv starts with "<pad>" and "<unk>"). */
export const PAD_ITEM_ID = 0;
export const UNKNOWN_ITEM_ID = 1;
export const MAX_BUCKET = 24;

export interface FeatureParams {
  maxSeqLen: number;
  queryTokens: number;
  queryBuckets: number;
}

/** Number of bits of a non-negative integer: exact for any safe integer. */
export function bitLength(value: number): number {
  let n = Math.floor(value);
  let bits = 0;
  while (n >= 0x1_0000_0000) {
    n = Math.floor(n / 0x1_0000_0000);
    bits += 32;
  }
  return bits + (32 - Math.clz32(n));
}

export function timeBucket(deltaMs: number): number {
  const seconds = Math.floor(Math.max(0, deltaMs) / 1000);
  return Math.min(MAX_BUCKET, 1 + bitLength(seconds));
}

/** Total order of a window: by event time, then by source coordinates so ties are stable. */
export function compareWindowEvents(a: WindowEvent, b: WindowEvent): number {
  return (
    a.eventTimeMs - b.eventTimeMs || a.stream - b.stream || a.partition - b.partition || a.offset - b.offset
  );
}

/**
 * The newest `maxLen` events of `existing` ∪ `incoming`, in window order. The result depends only
 * on the union, not on arrival order, so redelivery and replays converge to the same window.
 */
export function mergeWindow(
  existing: readonly WindowEvent[],
  incoming: readonly WindowEvent[],
  maxLen: number,
): WindowEvent[] {
  const merged = [...existing, ...incoming].sort(compareWindowEvents);
  const unique: WindowEvent[] = [];
  for (const event of merged) {
    const previous = unique[unique.length - 1];
    if (previous && compareWindowEvents(previous, event) === 0) continue;
    unique.push(event);
  }
  return unique.length > maxLen ? unique.slice(unique.length - maxLen) : unique;
}

/** Int64 model inputs for a batch of users, left-padded to the longest window in the batch. */
export interface SequenceBatch {
  batchSize: number;
  timeSteps: number;
  queryTokens: number;
  itemIds: BigInt64Array;
  eventKinds: BigInt64Array;
  queryTokenIds: BigInt64Array;
  gapBuckets: BigInt64Array;
  ageBuckets: BigInt64Array;
}

/**
 * Builds the int64 tensors without a BigInt per cell: every value is a non-negative id or bucket
 * below 2^31, so writing the low 32-bit word through an Int32Array view of each buffer (the high
 * word stays 0) gives the same bytes on little-endian machines (model-bundle.ts refuses others).
 * This was 3x faster than BigInt cells and fed the GC less (bench/model.bench.ts).
 */
export function buildSequenceBatch(windows: readonly (readonly WindowEvent[])[], queryTokens: number): SequenceBatch {
  const batchSize = windows.length;
  let timeSteps = 1;
  for (const window of windows) if (window.length > timeSteps) timeSteps = window.length;
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
  const items = new Int32Array(batch.itemIds.buffer);
  const kinds = new Int32Array(batch.eventKinds.buffer);
  const tokens = new Int32Array(batch.queryTokenIds.buffer);
  const gaps = new Int32Array(batch.gapBuckets.buffer);
  const ages = new Int32Array(batch.ageBuckets.buffer);
  for (let row = 0; row < batchSize; row++) {
    const window = windows[row]!;
    const length = window.length;
    if (length === 0) continue;
    const newest = window[length - 1]!.eventTimeMs;
    const first = row * timeSteps + (timeSteps - length);
    for (let index = 0; index < length; index++) {
      const event = window[index]!;
      const low = (first + index) * 2;
      items[low] = event.itemId;
      kinds[low] = event.kind;
      gaps[low] = index === 0 ? 1 : timeBucket(event.eventTimeMs - window[index - 1]!.eventTimeMs);
      ages[low] = timeBucket(newest - event.eventTimeMs);
      const count = Math.min(event.queryTokens.length, queryTokens);
      for (let k = 0; k < count; k++) tokens[((first + index) * queryTokens + k) * 2] = event.queryTokens[k]!;
    }
  }
  return batch;
}

/** One user's step for a stateful model: advance `state` by `events` (in applied order). */
export interface StepInput {
  /** The state before these events (stateDim floats); all zero for a user without one. */
  state: Float32Array;
  /** Event time of the event applied just before these (for the first gap); undefined if none. */
  previousEventMs: number | undefined;
  events: readonly WindowEvent[];
  /** How many of `events` the returned checkpoint state has applied (0..events.length). */
  checkpointAt: number;
}

/** Model inputs of a step batch: the state rows and checkpoints, and the events left-padded (no age). */
export interface StepBatch {
  batchSize: number;
  timeSteps: number;
  queryTokens: number;
  stateDim: number;
  state: Float32Array;
  checkpointAt: BigInt64Array;
  itemIds: BigInt64Array;
  eventKinds: BigInt64Array;
  queryTokenIds: BigInt64Array;
  gapBuckets: BigInt64Array;
}

/**
 * The stateful kind's inputs. A gap is the time since the event applied before it, whichever call
 * applied that one, so an event's features never depend on how the history was cut into steps.
 * Same int64 writing as buildSequenceBatch.
 */
export function buildStepBatch(steps: readonly StepInput[], queryTokens: number, stateDim: number): StepBatch {
  const batchSize = steps.length;
  let timeSteps = 1;
  for (const step of steps) if (step.events.length > timeSteps) timeSteps = step.events.length;
  const cells = batchSize * timeSteps;
  const batch: StepBatch = {
    batchSize,
    timeSteps,
    queryTokens,
    stateDim,
    state: new Float32Array(batchSize * stateDim),
    checkpointAt: new BigInt64Array(batchSize),
    itemIds: new BigInt64Array(cells),
    eventKinds: new BigInt64Array(cells),
    queryTokenIds: new BigInt64Array(cells * queryTokens),
    gapBuckets: new BigInt64Array(cells),
  };
  const items = new Int32Array(batch.itemIds.buffer);
  const kinds = new Int32Array(batch.eventKinds.buffer);
  const tokens = new Int32Array(batch.queryTokenIds.buffer);
  const gaps = new Int32Array(batch.gapBuckets.buffer);
  const checkpoints = new Int32Array(batch.checkpointAt.buffer);
  steps.forEach((step, row) => {
    if (step.state.length !== stateDim) throw new RangeError(`state of ${step.state.length} floats, the model's is ${stateDim}`);
    batch.state.set(step.state, row * stateDim);
    checkpoints[row * 2] = step.checkpointAt;
    const length = step.events.length;
    const first = row * timeSteps + (timeSteps - length);
    let previous = step.previousEventMs;
    for (let index = 0; index < length; index++) {
      const event = step.events[index]!;
      const low = (first + index) * 2;
      items[low] = event.itemId;
      kinds[low] = event.kind;
      gaps[low] = previous === undefined ? 1 : timeBucket(event.eventTimeMs - previous);
      previous = event.eventTimeMs;
      const count = Math.min(event.queryTokens.length, queryTokens);
      for (let k = 0; k < count; k++) tokens[((first + index) * queryTokens + k) * 2] = event.queryTokens[k]!;
    }
  });
  return batch;
}
