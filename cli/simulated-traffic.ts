import type { EventProducer, TasteEvent } from '../consumers/event-producer.js';
import type { World } from '../simulator/world.js';

export interface TrafficOptions {
  world: World;
  producer: EventProducer;
  /** Events per second, paced in small batches. */
  ratePerSecond: number;
  /** Stop after this long; 0 runs until the world has no more events or `signal` aborts. */
  durationMs: number;
  signal: AbortSignal;
  /** Called about once per second. */
  onProgress?: (sent: number) => void;
}

export interface TrafficSummary {
  sent: number;
  eventsByUser: Map<string, number>;
}

const TICK_MS = 20;

/**
 * Plays the simulated world into Kafka at a steady rate, each event stamped with the moment it is
 * sent, so freshness (event time → embedding written) is measured against the real clock.
 * Sends are awaited: if Kafka is slower than the rate, the rate drops instead of memory growing.
 */
export async function produceSimulatedTraffic(options: TrafficOptions): Promise<TrafficSummary> {
  const { world, producer, ratePerSecond, durationMs, signal } = options;
  const events = world.events();
  const eventsByUser = new Map<string, number>();
  const started = Date.now();
  let sent = 0;
  let lastProgress = started;
  while (!signal.aborted && (durationMs === 0 || Date.now() - started < durationMs)) {
    const due = Math.floor(((Date.now() - started) / 1000) * ratePerSecond) - sent;
    if (due <= 0) {
      await new Promise((resolve) => setTimeout(resolve, TICK_MS));
      continue;
    }
    const batch: TasteEvent[] = [];
    for (let i = 0; i < Math.min(due, 5000); i++) {
      const next = events.next();
      if (next.done) break;
      const now = Date.now();
      const simulated = next.value;
      batch.push(
        simulated.kind === 'play'
          ? { kind: 'play', event: { ...simulated.event, eventTimeMs: now } }
          : { kind: 'search', event: { ...simulated.event, eventTimeMs: now } },
      );
      eventsByUser.set(simulated.event.userId, (eventsByUser.get(simulated.event.userId) ?? 0) + 1);
    }
    if (batch.length === 0) break;
    await producer.send(batch);
    sent += batch.length;
    if (Date.now() - lastProgress >= 1000) {
      lastProgress = Date.now();
      options.onProgress?.(sent);
    }
  }
  return { sent, eventsByUser };
}
