import anyTest, { type TestFn } from 'ava';
import type { RedisClient } from '../../featurestore/feature-store.js';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { isLive, pruneReplicas, readReplicas, readRolloutRecord, registerReplica, replicasKey, rolloutKey, setDefaultVersion } from '../../featurestore/rollout-state.js';
import { unique } from '../helpers/environment.js';
import { storeTarget } from '../helpers/redis-target.js';

interface Context {
  redis: RedisClient;
}
const test = anyTest as TestFn<Context>;
const target = storeTarget();

test.before(async (t) => {
  const redis = createRedisClient({ url: target.url, cluster: target.cluster });
  await waitForRedis(redis);
  t.context = { redis };
});

test.after.always((t) => {
  t.context.redis?.disconnect();
});

test(`${target.name}: the default is set by compare-and-set on the one it replaces, and keeps the previous one`, async (t) => {
  const { redis } = t.context;
  const prefix = unique('rollout');
  t.is(await readRolloutRecord(redis, prefix), undefined);
  t.deepEqual(await setDefaultVersion(redis, prefix, { version: 'v2', expectedCurrent: undefined, servedBefore: 'v1', setBy: 'ann', nowMs: 1000, coverage: 0.97 }), { outcome: 'set', current: undefined });
  t.deepEqual(await readRolloutRecord(redis, prefix), { version: 'v2', previous: 'v1', setBy: 'ann', setAtMs: 1000, coverage: 0.97, forced: false });
  // Checked against v1, but the default is v2 by now: refused, nothing changes.
  t.deepEqual(await setDefaultVersion(redis, prefix, { version: 'v3', expectedCurrent: 'v1', setBy: 'bob', nowMs: 2000 }), { outcome: 'conflict', current: 'v2' });
  t.deepEqual(await setDefaultVersion(redis, prefix, { version: 'v2', expectedCurrent: 'v2', setBy: 'bob', nowMs: 2000 }), { outcome: 'unchanged', current: 'v2' });
  t.deepEqual(await setDefaultVersion(redis, prefix, { version: 'v1', expectedCurrent: 'v2', setBy: 'bob', nowMs: 3000, forced: true }), { outcome: 'set', current: 'v2' });
  t.deepEqual(await readRolloutRecord(redis, prefix), { version: 'v1', previous: 'v2', setBy: 'bob', setAtMs: 3000, coverage: undefined, forced: true });
  // A record a foreign writer broke reads as none (serving then keeps its --model default).
  await redis.hset(rolloutKey(prefix), 'version', 'no spaces allowed');
  t.is(await readRolloutRecord(redis, prefix), undefined);
});

test(`${target.name}: replicas register, go stale after three polls (10 s at least), and stale ones are pruned`, async (t) => {
  const { redis } = t.context;
  const prefix = unique('replicas');
  await registerReplica(redis, prefix, 'a', { versions: ['v1', 'v2'], defaultVersion: 'v1', seenMs: 100_000, pollMs: 1000 });
  await registerReplica(redis, prefix, 'b', { versions: ['v1'], defaultVersion: 'v1', seenMs: 60_000, pollMs: 20_000 });
  await redis.hset(replicasKey(prefix), 'garbage', '{not json');
  const replicas = await readReplicas(redis, prefix, 109_000);
  t.deepEqual(replicas.map((r) => [r.id, r.live]), [['a', true], ['b', true]]);
  t.deepEqual((await readReplicas(redis, prefix, 111_000)).map((r) => [r.id, r.live]), [['a', false], ['b', true]]);
  t.false(isLive({ seenMs: 60_000, pollMs: 20_000 }, 120_001));
  t.is(await pruneReplicas(redis, prefix, 111_000, 30_000), 1); // b, seen 51 s before
  t.deepEqual((await redis.hkeys(replicasKey(prefix))).sort(), ['a', 'garbage'], 'HKEYS has no order');
});
