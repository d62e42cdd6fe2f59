import { EventProducer, type TasteEvent } from '../../consumers/event-producer.js';
import { createProducer, type Kafka } from '../../consumers/kafka.js';
import type { StreamTopics } from '../../consumers/stream-consumer.js';
import { createCatalogue } from '../../simulator/catalogue.js';
import { World } from '../../simulator/world.js';

export interface ProducedTraffic {
  sent: number;
  plays: number;
  searches: number;
  eventsByUser: Map<string, number>;
  /** Users of the world, touched or not (what to seed). */
  userIds: string[];
  produceMs: number;
}

/** The demo's world: models/default was exported over catalogue seed 1 with 5000 items. */
export function benchWorld(users: number, seed = 1): World {
  const catalogue = createCatalogue({ seed: 1, items: 5000 });
  return new World({ seed, users, catalogue, durationMs: Number.POSITIVE_INFINITY });
}

/**
 * Produces the first `count` events of a simulated world (Zipf-like activity: Pareto-distributed
 * users, sessions of plays, searches) as fast as Kafka acknowledges them, through the project's
 * EventProducer (protobuf, keyed by user id). `restamp`: event time = now (else simulated time).
 */
export async function produceWorldEvents(
  kafka: Kafka,
  topics: Pick<StreamTopics, 'play' | 'search'>,
  options: { users: number; count: number; seed?: number; restamp?: boolean; batch?: number },
): Promise<ProducedTraffic> {
  const world = benchWorld(options.users, options.seed);
  const producer = createProducer(kafka, { idempotent: true });
  await producer.connect();
  const events = new EventProducer(producer, topics);
  const eventsByUser = new Map<string, number>();
  const started = performance.now();
  let sent = 0;
  let plays = 0;
  try {
    const source = world.events();
    const batchSize = options.batch ?? 2000;
    while (sent < options.count) {
      const batch: TasteEvent[] = [];
      while (batch.length < batchSize && sent + batch.length < options.count) {
        const next = source.next();
        if (next.done) break;
        const simulated = next.value;
        const eventTimeMs = options.restamp ? Date.now() : simulated.event.eventTimeMs;
        batch.push(
          simulated.kind === 'play'
            ? { kind: 'play', event: { ...simulated.event, eventTimeMs } }
            : { kind: 'search', event: { ...simulated.event, eventTimeMs } },
        );
        if (simulated.kind === 'play') plays++;
        eventsByUser.set(simulated.event.userId, (eventsByUser.get(simulated.event.userId) ?? 0) + 1);
      }
      if (batch.length === 0) break;
      await events.send(batch);
      sent += batch.length;
    }
  } finally {
    await producer.disconnect();
  }
  return {
    sent,
    plays,
    searches: sent - plays,
    eventsByUser,
    userIds: world.users.map((user) => user.userId),
    produceMs: performance.now() - started,
  };
}
