import type { ModelMetadata } from '../../model/contract.js';
import { EventKinds, type EventKind, Streams, type WindowEvent } from '../../events/window-event.js';
import { Random } from '../../simulator/random.js';

/**
 * Plausible featurized windows without Kafka: item ids over the whole vocabulary, mostly plays
 * (4% searches with 1–3 hashed tokens, like the simulator), gaps of seconds to hours. The model's
 * cost depends on shapes, not values, but real-looking values keep codecs and buckets honest.
 */
export function syntheticWindow(rng: Random, length: number, metadata: ModelMetadata, endMs: number, partition = 0): WindowEvent[] {
  const window: WindowEvent[] = new Array(length);
  let t = endMs;
  for (let i = length - 1; i >= 0; i--) {
    const search = rng.chance(0.04);
    const kind: EventKind = search ? EventKinds.SEARCH : ([EventKinds.PLAY, EventKinds.COMPLETED, EventKinds.SKIPPED] as const)[rng.int(3)]!;
    const tokens: number[] = [];
    if (search) for (let k = 1 + rng.int(3); k > 0; k--) tokens.push(1 + rng.int(metadata.queryBuckets - 1));
    window[i] = {
      eventTimeMs: t,
      stream: search ? Streams.SEARCH : Streams.PLAY,
      partition,
      offset: 1_000_000 + i,
      itemId: 2 + rng.int(metadata.numItems - 2),
      kind,
      queryTokens: tokens,
    };
    t -= Math.round(rng.chance(0.1) ? rng.exponential(6 * 3600_000) : rng.exponential(180_000));
  }
  return window;
}

export function syntheticWindows(count: number, length: number, metadata: ModelMetadata, seed = 1, endMs = Date.UTC(2026, 0, 1)): WindowEvent[][] {
  const rng = new Random(`bench-windows-${seed}`);
  return Array.from({ length: count }, () => syntheticWindow(rng, length, metadata, endMs));
}
