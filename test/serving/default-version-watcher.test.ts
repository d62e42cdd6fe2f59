import anyTest, { type TestFn } from 'ava';
import { TasteError } from '../../common/errors.js';
import type { RedisClient } from '../../featurestore/feature-store.js';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { readReplicas, replicasKey, rolloutKey } from '../../featurestore/rollout-state.js';
import { DefaultVersionWatcher } from '../../serving/default-version-watcher.js';
import { EmbeddingService, type EmbeddingReader } from '../../serving/embedding-service.js';
import { REDIS_URL, unique } from '../helpers/environment.js';

// The serving side of a runtime switch, in process against the real Redis (the two-process switch
// is test/cli/rollout-command.test.ts).

interface Context {
  redis: RedisClient;
}
const test = anyTest as TestFn<Context>;

test.before(async (t) => {
  const redis = createRedisClient({ url: REDIS_URL, connectionName: 'test-watcher' });
  await waitForRedis(redis);
  t.context = { redis };
});

test.after.always((t) => {
  t.context.redis?.disconnect();
});

function reader(modelVersion: string): EmbeddingReader {
  return { modelVersion, readEmbeddingResults: async (userIds) => userIds.map(() => ({ status: 'missing' as const })) };
}

function service(): EmbeddingService {
  return new EmbeddingService({ stores: [reader('m1'), reader('m2')], defaultModelVersion: 'm1' });
}

function counting() {
  const seen = { defaults: [] as string[], refused: [] as string[], failures: 0 };
  return {
    seen,
    observer: { onDefault: (v: string) => seen.defaults.push(v), onRefused: (v: string) => seen.refused.push(v), onPollFailed: () => seen.failures++ },
  };
}

test('setDefaultVersion switches between served versions and refuses any other, keeping the old default', (t) => {
  const embeddings = service();
  t.true(embeddings.setDefaultVersion('m2'));
  t.is(embeddings.defaultModelVersion, 'm2');
  t.false(embeddings.setDefaultVersion('m2'));
  t.throws(() => embeddings.setDefaultVersion('m3'), { instanceOf: TasteError, message: /"m3" is not served here \(served: m1, m2\): keeping "m2"/ });
  t.is(embeddings.defaultModelVersion, 'm2');
});

test('each poll follows the record: switch, refuse an unserved version once, and fall back to --model when the record goes', async (t) => {
  const { redis } = t.context;
  const prefix = unique('watcher');
  const embeddings = service();
  const { seen, observer } = counting();
  const watcher = new DefaultVersionWatcher({ redis, keyPrefix: prefix, service: embeddings, configuredDefault: 'm1', replicaId: 'r1', observer, pollMs: 50 });
  t.true(await watcher.poll());
  t.is(embeddings.defaultModelVersion, 'm1');
  t.deepEqual(seen.defaults, ['m1']);
  const [registered] = await readReplicas(redis, prefix, Date.now());
  t.like(registered, { id: 'r1', versions: ['m1', 'm2'], defaultVersion: 'm1', pollMs: 50, live: true });

  await redis.hset(rolloutKey(prefix), 'version', 'm2');
  t.true(await watcher.poll());
  t.is(embeddings.defaultModelVersion, 'm2');
  t.is((await readReplicas(redis, prefix, Date.now()))[0]?.defaultVersion, 'm2');

  await redis.hset(rolloutKey(prefix), 'version', 'm9');
  await watcher.poll();
  await watcher.poll();
  t.is(embeddings.defaultModelVersion, 'm2');
  t.deepEqual(seen.refused, ['m9'], 'counted once, not per poll');

  await redis.del(rolloutKey(prefix));
  await watcher.poll();
  t.is(embeddings.defaultModelVersion, 'm1');
  t.deepEqual(seen.defaults, ['m1', 'm2', 'm1']);

  // Started, it polls by itself; stopped, it takes its registration out.
  watcher.start();
  await redis.hset(rolloutKey(prefix), 'version', 'm2');
  const started = Date.now();
  while (embeddings.defaultModelVersion !== 'm2' && Date.now() - started < 5000) await new Promise((resolve) => setTimeout(resolve, 10));
  t.is(embeddings.defaultModelVersion, 'm2');
  await watcher.stop();
  t.true(await watcher.firstRead);
  t.is(await redis.hexists(replicasKey(prefix), 'r1'), 0);
});

test('Redis down: polls fail without throwing, the default stays, and firstRead waits', async (t) => {
  const down = createRedisClient({ url: 'redis://127.0.0.1:1', commandTimeoutMs: 300 });
  down.on('error', () => {});
  t.teardown(() => down.disconnect());
  const embeddings = service();
  embeddings.setDefaultVersion('m2');
  const { seen, observer } = counting();
  const watcher = new DefaultVersionWatcher({ redis: down, keyPrefix: unique('watcher-down'), service: embeddings, configuredDefault: 'm1', observer, pollMs: 20 });
  t.false(await watcher.poll());
  watcher.start();
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.is(embeddings.defaultModelVersion, 'm2');
  t.true(seen.failures >= 3, `${seen.failures} failed polls`);
  t.deepEqual(seen.defaults, []);
  let read: boolean | undefined;
  void watcher.firstRead.then((value) => (read = value));
  await new Promise((resolve) => setImmediate(resolve));
  t.is(read, undefined);
  await watcher.stop();
  t.false(await watcher.firstRead);
});
