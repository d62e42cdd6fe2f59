import anyTest, { type TestFn } from 'ava';
import { FeatureStore, type RedisClient } from '../../featurestore/feature-store.js';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { coverageEstimate, quantile, sampleVersions, summarizeVersion } from '../../featurestore/version-sample.js';
import { EventKinds, Streams } from '../../events/window-event.js';
import { unique } from '../helpers/environment.js';
import { storeTarget } from '../helpers/redis-target.js';

// The sample behind the coverage guard and `taste rollout status`, on the single Redis or, with
// TASTE_TEST_REDIS_CLUSTER_URL, on a Redis Cluster (SCAN must visit every master).

interface Context {
  redis: RedisClient;
}
const test = anyTest as TestFn<Context>;
const target = storeTarget();
const NOW = 1_800_000_000_000;
const HOUR = 3_600_000;

test.before(async (t) => {
  const redis = createRedisClient({ url: target.url, cluster: target.cluster });
  await waitForRedis(redis);
  t.context = { redis };
});

test.after.always((t) => {
  t.context.redis?.disconnect();
});

/** One embedding per user in `version`: newest event `lastAgoMs` before NOW, written `writtenAgoMs` before NOW. */
async function seed(redis: RedisClient, prefix: string, version: string, users: { id: string; lastAgoMs: number; writtenAgoMs: number }[]): Promise<void> {
  const store = new FeatureStore({ redis, modelVersion: version, queryTokens: 0, keyPrefix: prefix });
  const outcomes = await store.writeStates(
    users.map(({ id, lastAgoMs, writtenAgoMs }, index) => ({
      userId: id,
      expectedVersion: 0,
      window: [{ eventTimeMs: NOW - lastAgoMs, stream: Streams.PLAY, partition: 0, offset: index, itemId: 3, kind: EventKinds.PLAY, queryTokens: [] }],
      highWater: new Map([['p:0', index]]),
      embedding: new Float32Array([1, 0]),
      updatedMs: NOW - writtenAgoMs,
      appliedTotal: 1,
    })),
  );
  if (!outcomes.every((outcome) => outcome === 'written')) throw new Error(outcomes.join(','));
}

test('coverage is covered / active with the binomial standard error; a census has none', (t) => {
  t.deepEqual(coverageEstimate(30, 40, false), { share: 0.75, standardError: Math.sqrt((0.75 * 0.25) / 40) });
  t.deepEqual(coverageEstimate(30, 40, true), { share: 0.75, standardError: 0 });
  t.deepEqual(coverageEstimate(0, 10, false), { share: 0, standardError: 0 });
  t.is(coverageEstimate(0, 0, false), undefined);
});

test('quantiles are nearest-rank', (t) => {
  const values = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
  t.is(quantile(values, 0.5), 50);
  t.is(quantile(values, 0.95), 100);
  t.is(quantile(values, 0), 10);
  t.is(quantile([7], 0.95), 7);
  t.is(quantile([], 0.5), undefined);
});

test(`${target.name}: the sample counts the active users of the base version and who of them the candidate has, with their freshness`, async (t) => {
  const { redis } = t.context;
  const prefix = unique('sample');
  // 60 active users in A (newest event i minutes ago, written i + 1 s after it); 45 of them in B,
  // written 2 h ago; 20 idle users in A (3 days); 5 users only in B (not counted anywhere).
  const active = Array.from({ length: 60 }, (_, i) => ({ id: `u${i}`, lastAgoMs: i * 60_000, writtenAgoMs: i * 60_000 - (i + 1) * 1000 }));
  await seed(redis, prefix, 'A', [...active, ...Array.from({ length: 20 }, (_, i) => ({ id: `idle${i}`, lastAgoMs: 72 * HOUR, writtenAgoMs: 72 * HOUR }))]);
  const inB = active.filter((_, i) => i % 4 !== 0); // 45
  await seed(redis, prefix, 'B', [...inB.map((u) => ({ ...u, writtenAgoMs: 2 * HOUR })), ...Array.from({ length: 5 }, (_, i) => ({ id: `new${i}`, lastAgoMs: 0, writtenAgoMs: 0 }))]);
  // Keys that only look like a user's are skipped, not read as one.
  await redis.set(`${prefix}:{not a user}:A`, 'x');

  const sample = await sampleVersions(redis, prefix, { baseVersion: 'A', versions: ['B'], activeWithinMs: 24 * HOUR, nowMs: NOW, scanCount: 7 });
  t.is(sample.scannedKeys, 80);
  t.is(sample.active, 60);
  t.true(sample.complete);
  const b = summarizeVersion(sample, 'B');
  t.like(b, { covered: 45, active: 60, coverage: 0.75, standardError: 0, ageP50Ms: 2 * HOUR, ageP95Ms: 2 * HOUR });
  const a = summarizeVersion(sample, 'A');
  t.like(a, { covered: 60, coverage: 1 });
  // A's lag (written - newest event) is i + 1 s for i = 0..59: nearest-rank p50 is the 30th, 30 s.
  t.is(a.lagP50Ms, 30_000);
  // Ages of A: i * 60 s - (i + 1) s = 59 i - 1 s; p95 is the 57th smallest (i = 56).
  t.is(a.ageP95Ms, (59 * 56 - 1) * 1000);
  await redis.del(`${prefix}:{not a user}:A`);
});

test(`${target.name}: the sample stops at maxKeys and says it is not a census`, async (t) => {
  const { redis } = t.context;
  const prefix = unique('sample-cap');
  await seed(redis, prefix, 'A', Array.from({ length: 50 }, (_, i) => ({ id: `u${i}`, lastAgoMs: 1000, writtenAgoMs: 0 })));
  const sample = await sampleVersions(redis, prefix, { baseVersion: 'A', versions: [], activeWithinMs: HOUR, nowMs: NOW, maxKeys: 12, scanCount: 5 });
  t.false(sample.complete);
  t.true(sample.scannedKeys <= 12 && sample.scannedKeys >= 12 - 3, `${sample.scannedKeys} keys`);
  const summary = summarizeVersion(sample, 'A');
  t.is(summary.coverage, 1);
  t.is(summary.standardError, 0); // p = 1: no spread, even sampled
});
