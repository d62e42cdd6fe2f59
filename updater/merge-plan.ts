import { type HighWaterMarks, sourceKey } from '../featurestore/codec.js';
import type { WindowEvent } from '../events/window-event.js';

/** What the plan needs of an incoming event: its source topic and the featurized event (partition, offset, time). */
export interface Sourced {
  topic: string;
  event: WindowEvent;
}

/** One user's batch, deduplicated against the stored high-water marks (pure: nothing is read or written). */
export interface MergePlan<E extends Sourced> {
  /**
   * The events not applied before, in source-then-offset order: what the user's advancer merges into
   * the window (updater/advance.ts: the newest L for windowed models, the tail for stateful ones).
   */
  fresh: E[];
  /** Incoming events at or below their source's high-water offset: applied before, or twice in this batch. */
  duplicates: number;
  /** The stored marks, each source moved up to its newest fresh offset; sources not in the batch are kept. */
  highWater: HighWaterMarks;
  /** The newest event time among the fresh events (-Infinity when there are none). */
  newestFreshMs: number;
}

/**
 * Plans one user's merge: which incoming events are new and where each source's high-water mark
 * ends. An offset at or below its topic-partition's mark is a duplicate. The incoming events are
 * walked in offset order per source whatever order they came in, because "at or below the mark"
 * only means "applied" when each source's offsets are applied in order.
 */
export function planMerge<E extends Sourced>(storedHighWater: HighWaterMarks, incoming: readonly E[]): MergePlan<E> {
  const highWater: HighWaterMarks = new Map(storedHighWater);
  const fresh: E[] = [];
  // A loop, not Math.max(...times): a spread of more than ~120k values overflows the call stack, and
  // a backfill step may hold that many events of one user (a bot's history, --chunk-size above it).
  let newestFreshMs = -Infinity;
  for (const sourced of [...incoming].sort(bySourceThenOffset)) {
    const source = sourceKey(sourced.topic, sourced.event.partition);
    if (sourced.event.offset <= (highWater.get(source) ?? -1)) continue;
    highWater.set(source, sourced.event.offset);
    fresh.push(sourced);
    if (sourced.event.eventTimeMs > newestFreshMs) newestFreshMs = sourced.event.eventTimeMs;
  }
  return { fresh, duplicates: incoming.length - fresh.length, highWater, newestFreshMs };
}

function bySourceThenOffset(a: Sourced, b: Sourced): number {
  if (a.topic !== b.topic) return a.topic < b.topic ? -1 : 1;
  return a.event.partition - b.event.partition || a.event.offset - b.event.offset;
}
