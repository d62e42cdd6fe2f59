import { createServer } from 'node:net';
import { createLogger } from '../../common/logger.js';
import { type FeatureStore, type RedisClient } from '../../featurestore/feature-store.js';
import { createKafka, ensureTopics, type Kafka } from '../../consumers/kafka.js';
import type { StreamTopics } from '../../consumers/stream-consumer.js';
import type { ModelMetadata } from '../../model/contract.js';
import { Random } from '../../simulator/random.js';
import { KAFKA_BROKERS, unique } from './env.js';
import { syntheticWindow } from './windows.js';

export const benchLogger = createLogger((process.env.TASTE_BENCH_LOG_LEVEL as 'warn' | undefined) ?? 'error');

export function benchKafka(clientId = 'taste-bench'): Kafka {
  return createKafka({ brokers: KAFKA_BROKERS, clientId }, benchLogger);
}

export function benchTopics(): StreamTopics {
  const id = unique('t');
  return { play: `${id}.plays`, search: `${id}.searches`, deadLetter: `${id}.dead-letter` };
}

export async function createTopics(kafka: Kafka, topics: StreamTopics, partitions: number): Promise<void> {
  await ensureTopics(kafka, [
    { topic: topics.play, partitions },
    { topic: topics.search, partitions },
    { topic: topics.deadLetter, partitions: 1 },
  ]);
}

export async function deleteTopics(kafka: Kafka, topics: StreamTopics): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics: [topics.play, topics.search, topics.deadLetter], timeout: 10_000 });
  } catch {
    // best effort: the broker's log cleaner removes them eventually anyway
  } finally {
    await admin.disconnect();
  }
}

/** UNLINKs every key under `prefix:` (SCAN, so Redis stays responsive). Returns how many. */
export async function deleteKeys(redis: RedisClient, prefix: string): Promise<number> {
  const nodes = 'nodes' in redis && typeof redis.nodes === 'function' ? redis.nodes('master') : [redis];
  let deleted = 0;
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) deleted += await node.unlink(...keys);
    } while (cursor !== '0');
  }
  return deleted;
}

/**
 * Gives users a steady-state history: a full window of `length` events (older than `beforeMs`), an
 * embedding, and high-water marks for two other topics — what a returning listener looks like.
 */
export async function seedUsers(
  store: FeatureStore,
  userIds: readonly string[],
  metadata: ModelMetadata,
  options: { length?: number; beforeMs?: number; seed?: number } = {},
): Promise<void> {
  const rng = new Random(`bench-seed-${options.seed ?? 1}`);
  const length = options.length ?? metadata.maxSeqLen;
  const beforeMs = options.beforeMs ?? Date.UTC(2025, 11, 1);
  const embedding = new Float32Array(metadata.embeddingDim).fill(0.125);
  for (let start = 0; start < userIds.length; start += 1000) {
    const updates = userIds.slice(start, start + 1000).map((userId) => {
      const window = syntheticWindow(rng, length, metadata, beforeMs - rng.int(86_400_000), rng.int(4));
      const highWater = new Map([
        [`taste.plays.v1:${rng.int(32)}`, 1_000_000_000 + rng.int(1_000_000_000)],
        [`taste.searches.v1:${rng.int(32)}`, 10_000_000 + rng.int(100_000_000)],
      ]);
      // A plain object, not a literal typed as StateUpdate: fields the store does not know are ignored.
      const update = { userId, expectedVersion: 0, window, highWater, embedding, updatedMs: beforeMs, appliedTotal: length };
      return update;
    });
    const outcomes = await store.writeStates(updates);
    const refused = outcomes.filter((outcome) => outcome !== 'written').length;
    if (refused > 0) throw new Error(`seeding: ${refused} users already had state under this key prefix`);
  }
}

/** A TCP port free on 127.0.0.1 right now (for a child server to listen on). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}
