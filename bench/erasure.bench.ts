// The cost of erasure (docs/erasure.md). Two figures, each beside its baseline in the same run:
//  - erasures/s: FeatureStore.erase (one Lua step per user: set check, DELs, tombstone), 256
//    requests per call over users that each have a full state, vs raw pipelined DEL of the same keys;
//  - the stream job's events/s on the same pre-produced traffic with 1% of its users erased before
//    it starts (their events all dropped by the tombstone) vs with none erased.
import { randomUUID } from 'node:crypto';
import { FeatureStore } from '../featurestore/feature-store.js';
import { versionsKey } from '../featurestore/keys.js';
import { createRedisClient, waitForRedis } from '../featurestore/redis-client.js';
import { loadModelBundle } from '../model/model-bundle.js';
import { benchArgs, MODEL_DIR, numberArg, OUT_DIR, REDIS_URL, unique } from './lib/env.js';
import { type PipelineRun, runPipeline } from './lib/pipeline.js';
import { Report } from './lib/report.js';
import { benchKafka, benchTopics, createTopics, deleteKeys, deleteTopics, seedUsers } from './lib/services.js';
import { fmt, spread } from './lib/stats.js';
import { produceWorldEvents } from './lib/traffic.js';

const args = benchArgs({ users: { type: 'string' }, events: { type: 'string' }, 'erased-share': { type: 'string' } });
const report = new Report('erasure');
const ERASE_USERS = numberArg(args, 'users', args.long ? 20_000 : 4_000);
const N = numberArg(args, 'events', args.long ? 40_000 : 10_000);
const ERASED_SHARE = numberArg(args, 'erased-share', 0.01);
const BATCH = 256;
const bundle = await loadModelBundle(MODEL_DIR);
const { metadata } = bundle;
const redis = createRedisClient({ url: REDIS_URL, connectionName: 'taste-bench', commandTimeoutMs: 10_000 });
await waitForRedis(redis);
const kafka = benchKafka();
const topics = benchTopics();

/** A fresh store with `count` users, each with a full state. */
async function seeded(count: number): Promise<{ store: FeatureStore; prefix: string; userIds: string[] }> {
  const prefix = unique('erase');
  const store = new FeatureStore({ redis, modelVersion: metadata.modelVersion, queryTokens: metadata.queryTokens, keyPrefix: prefix });
  const userIds = Array.from({ length: count }, (_, i) => `user-${i}`);
  await seedUsers(store, userIds, metadata);
  return { store, prefix, userIds };
}

try {
  // 1. Erasures per second, and the raw DEL of the same keys.
  const erasing: number[] = [];
  const deleting: number[] = [];
  for (let r = 0; r < args.repeats; r++) {
    const a = await seeded(ERASE_USERS);
    const requestTimeMs = Date.now();
    let t0 = performance.now();
    for (let start = 0; start < a.userIds.length; start += BATCH) {
      const results = await a.store.erase(a.userIds.slice(start, start + BATCH).map((userId) => ({ userId, requestTimeMs, requestId: randomUUID() })));
      if (results.some((result) => result.keysDeleted !== 1)) throw new Error('an erasure found no state to delete');
    }
    erasing.push((ERASE_USERS * 1000) / (performance.now() - t0));
    await deleteKeys(redis, a.prefix);

    const b = await seeded(ERASE_USERS);
    t0 = performance.now();
    for (let start = 0; start < b.userIds.length; start += BATCH) {
      const batch = b.userIds.slice(start, start + BATCH);
      const deleted = await Promise.all(batch.map((userId) => redis.del(b.store.key(userId), versionsKey(b.prefix, userId))));
      if (deleted.some((count) => count !== 2)) throw new Error('raw DEL found no state to delete');
    }
    deleting.push((ERASE_USERS * 1000) / (performance.now() - t0));
    await deleteKeys(redis, b.prefix);
    report.info(`run ${r + 1}: erase ${fmt(erasing[r]!)} users/s, raw DEL ${fmt(deleting[r]!)} users/s (${ERASE_USERS} users with a ${metadata.maxSeqLen}-event state)`);
  }
  const eraseS = spread(erasing);
  const delS = spread(deleting);
  report.figure({
    id: 'erasure.erasures_per_s',
    label: `FeatureStore.erase (set check + DELs + tombstone in one Lua step per user), ${BATCH} requests per call, vs raw pipelined DEL of the same two keys`,
    unit: 'erasures/s',
    value: eraseS.median,
    spread: eraseS,
    ceiling: delS.median,
    ceilingSpread: delS,
    ceilingLabel: 'raw DEL (pipelined, same client)',
  });

  // 2. The stream job with 1% of its users erased, vs none: same traffic, alternated per repeat.
  await createTopics(kafka, topics, 4);
  const traffic = await produceWorldEvents(kafka, topics, { users: 100_000, count: N });
  const touched = [...traffic.eventsByUser.keys()];
  const erased = touched.filter((_, index) => index % Math.round(1 / ERASED_SHARE) === 0);
  const erasedEvents = erased.reduce((sum, userId) => sum + traffic.eventsByUser.get(userId)!, 0);
  report.info(`stream: ${traffic.sent} events of ${touched.length} users; ${erased.length} users erased (${erasedEvents} of their events to be dropped)`);
  const plain: PipelineRun[] = [];
  const withErasures: PipelineRun[] = [];
  for (let r = 0; r < args.repeats; r++) {
    plain.push(await runPipeline({ bundle, redis, topics, expected: N, seedUserIds: touched }));
    const requestTimeMs = Date.now();
    withErasures.push(
      await runPipeline({
        bundle,
        redis,
        topics,
        expected: N,
        seedUserIds: touched,
        beforeStart: async (store) => {
          for (let start = 0; start < erased.length; start += BATCH) {
            await store.erase(erased.slice(start, start + BATCH).map((userId) => ({ userId, requestTimeMs, requestId: randomUUID() })));
          }
        },
      }),
    );
    const last = withErasures[r]!;
    report.info(`run ${r + 1}: none erased ${fmt(plain[r]!.eventsPerS)} events/s; ${(ERASED_SHARE * 100).toFixed(0)}% erased ${fmt(last.eventsPerS)} events/s (applied ${last.applied} of ${N})`);
    if (last.applied !== N - erasedEvents) throw new Error(`with erasures the job applied ${last.applied} events, expected ${N - erasedEvents}`);
  }
  const plainS = spread(plain.map((run) => run.eventsPerS));
  const erasedS = spread(withErasures.map((run) => run.eventsPerS));
  report.figure({
    id: 'erasure.stream_with_1pct_erased',
    label: `stream job events/s with ${(ERASED_SHARE * 100).toFixed(0)}% of the traffic's users erased (their events dropped by tombstones) vs the same traffic with none`,
    unit: 'events/s',
    value: erasedS.median,
    spread: erasedS,
    ceiling: plainS.median,
    ceilingSpread: plainS,
    ceilingLabel: 'none erased (same run, same traffic)',
  });
} finally {
  await deleteTopics(kafka, topics).catch(() => undefined);
  redis.disconnect();
}
report.finish(OUT_DIR);
