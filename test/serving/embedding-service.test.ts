import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import anyTest, { type TestFn } from 'ava';
import { service as healthService } from 'grpc-health-check';
import type { Redis } from 'ioredis';
import { TasteError } from '../../common/errors.js';
import { FeatureStore, type RedisClient } from '../../featurestore/feature-store.js';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { EventKinds, Streams, type WindowEvent } from '../../events/window-event.js';
import {
  batchGetUserEmbeddings,
  createEmbeddingClient,
  getUserEmbedding,
  type EmbeddingServiceClient,
} from '../../serving/client.js';
import { EmbeddingService, type EmbeddingReader, withinDeadline } from '../../serving/embedding-service.js';
import { startServingServer, type ServingServer } from '../../serving/server.js';
import { eventually, REDIS_URL, unique } from '../helpers/environment.js';

interface Servers {
  serving: ServingServer;
  client: EmbeddingServiceClient;
}

interface Context {
  redis: RedisClient;
  prefix: string;
  /** Redis up, model versions m1 (default) and m2, batch limit 50. */
  main: Servers;
  /** Stores and health probe on a port where nothing listens: a real connection failure. */
  down: Servers & { redis: RedisClient };
  /** A store that never answers, to show the handler gives up at the deadline on its own. */
  slow: Servers;
}

const test = anyTest as TestFn<Context>;

const DIM = 8;
const vectorM1 = Float32Array.from({ length: DIM }, (_, i) => Math.sin(i + 1) / 2);
const vectorM2 = Float32Array.from({ length: DIM }, (_, i) => Math.cos(i + 1) / 3);
const event: WindowEvent = {
  eventTimeMs: 1_764_000_000_123,
  stream: Streams.PLAY,
  partition: 3,
  offset: 42,
  itemId: 4711,
  kind: EventKinds.PLAY,
  queryTokens: [],
};
const UPDATED_MS = 1_764_000_005_000;
const MAX_BATCH = 50;

async function serve(options: Parameters<typeof startServingServer>[0]): Promise<Servers> {
  const serving = await startServingServer({ port: 0, healthProbeIntervalMs: 200, shutdownTimeoutMs: 2000, ...options });
  return { serving, client: createEmbeddingClient(serving.address) };
}

test.before(async (t) => {
  const redis = createRedisClient({ url: REDIS_URL, connectionName: 'test-serving' });
  await waitForRedis(redis);
  const prefix = unique('test-serving');
  const m1 = new FeatureStore({ redis, modelVersion: 'm1', queryTokens: 4, keyPrefix: prefix });
  const m2 = new FeatureStore({ redis, modelVersion: 'm2', queryTokens: 4, keyPrefix: prefix });
  const update = (userId: string, embedding: Float32Array) => ({
    userId,
    expectedVersion: 0,
    window: [event],
    highWater: new Map([['taste.plays.v1:3', 42]]),
    embedding,
    updatedMs: UPDATED_MS,
    appliedTotal: 1,
  });
  t.deepEqual(await m1.writeStates([update('alice', vectorM1), update('bob@example.com', vectorM1)]), ['written', 'written']);
  t.deepEqual(await m2.writeStates([update('alice', vectorM2)]), ['written']);

  const main = await serve({ redis, service: { stores: [m1, m2], defaultModelVersion: 'm1', maxBatchSize: MAX_BATCH } });

  const downRedis = createRedisClient({ url: 'redis://127.0.0.1:1', commandTimeoutMs: 500 });
  downRedis.on('error', () => {}); // reconnect noise; the failures we test surface on commands
  const downStore = new FeatureStore({ redis: downRedis, modelVersion: 'm1', queryTokens: 4, keyPrefix: prefix });
  const down = { ...(await serve({ redis: downRedis, service: { stores: [downStore] } })), redis: downRedis };

  const never: EmbeddingReader = { modelVersion: 'slow', readEmbeddingResults: () => new Promise(() => {}) };
  const slow = await serve({ redis, service: { stores: [never] } });

  t.context = { redis, prefix, main, down, slow };
});

test.after.always(async (t) => {
  const { redis, prefix, main, down, slow } = t.context;
  for (const { client, serving } of [main, down, slow].filter(Boolean)) {
    client.close();
    await serving.close();
  }
  down?.redis.disconnect();
  if (redis) {
    const keys: string[] = [];
    // Cleanup only: the test Redis is a single node, not a Cluster.
    for await (const batch of (redis as Redis).scanStream({ match: `${prefix}:*`, count: 1000 })) keys.push(...(batch as string[]));
    if (keys.length > 0) await Promise.all(keys.map((key) => redis.del(key)));
    redis.disconnect();
  }
});

async function rpcError(t: { fail(message: string): void }, call: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await call;
  } catch (error) {
    return error as grpc.ServiceError;
  }
  t.fail('expected the call to fail');
  throw new Error('unreachable');
}

test('a stored user gets the exact vector and metadata', async (t) => {
  const { embedding } = await getUserEmbedding(t.context.main.client, { userId: 'alice' });
  t.deepEqual(embedding, {
    userId: 'alice',
    modelVersion: 'm1',
    vector: Array.from(vectorM1),
    dimension: DIM,
    updatedTimeMs: UPDATED_MS,
    lastEventTimeMs: event.eventTimeMs,
    eventsInWindow: 1,
  });
});

test('model_version picks the store; empty means the default', async (t) => {
  const explicit = await getUserEmbedding(t.context.main.client, { userId: 'alice', modelVersion: 'm2' });
  t.deepEqual(explicit.embedding?.vector, Array.from(vectorM2));
  t.is(explicit.embedding?.modelVersion, 'm2');
  const batch = await batchGetUserEmbeddings(t.context.main.client, { userIds: ['alice'] });
  t.is(batch.modelVersion, 'm1');
});

test('a user without an embedding is NOT_FOUND', async (t) => {
  const error = await rpcError(t, getUserEmbedding(t.context.main.client, { userId: 'nobody' }));
  t.is(error.code, grpc.status.NOT_FOUND);
  t.regex(error.details, /no embedding for user "nobody" in model version "m1"/);
  // Present in m1 only.
  const other = await rpcError(t, getUserEmbedding(t.context.main.client, { userId: 'bob@example.com', modelVersion: 'm2' }));
  t.is(other.code, grpc.status.NOT_FOUND);
});

test('an invalid user id is INVALID_ARGUMENT', async (t) => {
  for (const userId of ['a{b}', '', 'u'.repeat(200), 'has space']) {
    const error = await rpcError(t, getUserEmbedding(t.context.main.client, { userId }));
    t.is(error.code, grpc.status.INVALID_ARGUMENT, JSON.stringify(userId));
    t.regex(error.details, /is not valid: it must match/);
    t.true(error.details.length < 300, 'long ids are clipped in the message');
  }
});

test('an unknown model version is NOT_FOUND naming the served ones; a malformed one INVALID_ARGUMENT', async (t) => {
  const unknown = await rpcError(t, getUserEmbedding(t.context.main.client, { userId: 'alice', modelVersion: 'm9' }));
  t.is(unknown.code, grpc.status.NOT_FOUND);
  t.regex(unknown.details, /model version "m9" is not served here; served: m1, m2 \(empty model_version means "m1"\)/);
  const batch = await rpcError(t, batchGetUserEmbeddings(t.context.main.client, { userIds: ['alice'], modelVersion: 'm9' }));
  t.is(batch.code, grpc.status.NOT_FOUND);
  const malformed = await rpcError(t, getUserEmbedding(t.context.main.client, { userId: 'alice', modelVersion: 'm1}:x' }));
  t.is(malformed.code, grpc.status.INVALID_ARGUMENT);
  t.regex(malformed.details, /model_version "m1}:x" is not valid/);
});

test('a batch answers each user in request order: found, missing, invalid, duplicate', async (t) => {
  const userIds = ['bob@example.com', 'nobody', 'a{b}', 'alice', '', 'alice'];
  const response = await batchGetUserEmbeddings(t.context.main.client, { userIds, modelVersion: 'm1' });
  t.is(response.modelVersion, 'm1');
  t.deepEqual(
    response.results.map((result) => [result.userId, result.result, result.error?.code ?? 0]),
    [
      ['bob@example.com', 'embedding', 0],
      ['nobody', 'error', grpc.status.NOT_FOUND],
      ['a{b}', 'error', grpc.status.INVALID_ARGUMENT],
      ['alice', 'embedding', 0],
      ['', 'error', grpc.status.INVALID_ARGUMENT],
      ['alice', 'embedding', 0],
    ],
  );
  t.deepEqual(response.results[3]?.embedding?.vector, Array.from(vectorM1));
  t.is(response.results[3]?.embedding?.eventsInWindow, 1);
  t.regex(response.results[1]?.error?.message ?? '', /no embedding/);
});

test('a corrupt stored embedding is DATA_LOSS for that user only; the rest of the batch is answered', async (t) => {
  const { redis, prefix } = t.context;
  const store = new FeatureStore({ redis, modelVersion: 'm1', queryTokens: 4, keyPrefix: prefix });
  // What a foreign or broken writer might leave: a torn vector, a non-float value, bad metadata.
  const damage: [user: string, field: string, value: Buffer | string][] = [
    ['torn', 'emb', Buffer.from([1, 2, 3])],
    ['nan', 'emb', Buffer.from(new Float32Array([Number.NaN, 0, 0, 0]).buffer)],
    ['badupd', 'upd', 'yesterday'],
    ['badcount', 'n', '-1'],
  ];
  for (const [user, field, value] of damage) {
    await redis.hset(store.key(user), 'emb', Buffer.from(vectorM1.buffer), 'upd', String(UPDATED_MS), 'last', '1', 'n', '1');
    await redis.hset(store.key(user), field, value);
  }
  const userIds = ['alice', ...damage.map(([user]) => user), 'bob@example.com'];
  const response = await batchGetUserEmbeddings(t.context.main.client, { userIds });
  t.deepEqual(
    response.results.map((result) => [result.userId, result.result, result.error?.code ?? 0]),
    [['alice', 'embedding', 0], ...damage.map(([user]) => [user, 'error', grpc.status.DATA_LOSS]), ['bob@example.com', 'embedding', 0]],
  );
  t.deepEqual(response.results[0]?.embedding?.vector, Array.from(vectorM1));
  t.regex(response.results[1]?.error?.message ?? '', /stored embedding for this user is corrupt/);
  const single = await rpcError(t, getUserEmbedding(t.context.main.client, { userId: 'torn' }));
  t.is(single.code, grpc.status.DATA_LOSS);
});

test('a batch at the limit is served; one over it or an empty one is INVALID_ARGUMENT', async (t) => {
  const ids = (n: number) => Array.from({ length: n }, (_, i) => `user-${i}`);
  const full = await batchGetUserEmbeddings(t.context.main.client, { userIds: ids(MAX_BATCH) });
  t.is(full.results.length, MAX_BATCH);
  const over = await rpcError(t, batchGetUserEmbeddings(t.context.main.client, { userIds: ids(MAX_BATCH + 1) }));
  t.is(over.code, grpc.status.INVALID_ARGUMENT);
  t.regex(over.details, /51 user ids is over the limit of 50 per call: split the batch/);
  const empty = await rpcError(t, batchGetUserEmbeddings(t.context.main.client, { userIds: [] }));
  t.is(empty.code, grpc.status.INVALID_ARGUMENT);
  t.regex(empty.details, /user_ids is empty/);
});

test('a request over 1 MiB is RESOURCE_EXHAUSTED and the server keeps serving', async (t) => {
  const error = await rpcError(t, getUserEmbedding(t.context.main.client, { userId: 'x'.repeat(1024 * 1024 + 1) }, 5000));
  t.is(error.code, grpc.status.RESOURCE_EXHAUSTED);
  t.truthy((await getUserEmbedding(t.context.main.client, { userId: 'alice' })).embedding);
});

test('Redis down: UNAVAILABLE well within the deadline, and health says NOT_SERVING', async (t) => {
  const started = Date.now();
  const error = await rpcError(t, getUserEmbedding(t.context.down.client, { userId: 'alice' }, 3000));
  t.is(error.code, grpc.status.UNAVAILABLE);
  t.regex(error.details, /feature store is unavailable/);
  t.true(Date.now() - started < 3000, `answered after ${Date.now() - started} ms`);
  const batch = await rpcError(t, batchGetUserEmbeddings(t.context.down.client, { userIds: ['alice', 'bob'] }, 3000));
  t.is(batch.code, grpc.status.UNAVAILABLE);
  t.is(await healthStatus(t.context.down.serving.address, ''), 'NOT_SERVING');
});

test('a 1 ms deadline is DEADLINE_EXCEEDED, and the server carries on', async (t) => {
  for (let i = 0; i < 20; i++) {
    const error = await rpcError(t, getUserEmbedding(t.context.main.client, { userId: 'alice' }, 1));
    t.is(error.code, grpc.status.DEADLINE_EXCEEDED);
  }
  t.truthy((await getUserEmbedding(t.context.main.client, { userId: 'alice' })).embedding);
});

test('a store that never answers gives DEADLINE_EXCEEDED at the deadline, not a hang', async (t) => {
  const started = Date.now();
  const error = await rpcError(t, getUserEmbedding(t.context.slow.client, { userId: 'alice' }, 200));
  t.is(error.code, grpc.status.DEADLINE_EXCEEDED);
  t.true(Date.now() - started < 1000, `answered after ${Date.now() - started} ms`);
});

test('the handler itself ends a call whose deadline passes (no reliance on the transport)', async (t) => {
  const never: EmbeddingReader = { modelVersion: 'v', readEmbeddingResults: () => new Promise(() => {}) };
  const service = new EmbeddingService({ stores: [never] });
  const call = { request: { userId: 'alice', modelVersion: '' }, getDeadline: () => Date.now() + 50 };
  const started = Date.now();
  const status = await new Promise<Partial<grpc.StatusObject> | null>((resolve) => {
    service.handlers.GetUserEmbedding(call as unknown as Parameters<typeof service.handlers.GetUserEmbedding>[0], (error) =>
      resolve(error as Partial<grpc.StatusObject> | null),
    );
  });
  t.is(status?.code, grpc.status.DEADLINE_EXCEEDED);
  t.true(Date.now() - started < 500);
});

test('withinDeadline: past deadlines never start the work, no deadline never times out', async (t) => {
  let started = false;
  const past = await t.throwsAsync(
    withinDeadline(Date.now() - 1, async () => {
      started = true;
    }),
  );
  t.is((past as unknown as { code: number }).code, grpc.status.DEADLINE_EXCEEDED);
  t.false(started);
  t.is(await withinDeadline(Infinity, async () => 7), 7);
  t.is(await withinDeadline(new Date(Date.now() + 10_000), async () => 8), 8);
});

test('health: SERVING once Redis answers, for the server and the service; setServing(false) drains', async (t) => {
  const { address } = t.context.main.serving;
  await eventually(async () => ((await healthStatus(address, '')) === 'SERVING' ? true : undefined), 'SERVING', 5000);
  t.is(await healthStatus(address, 'taste.v1.EmbeddingService'), 'SERVING');
  t.context.main.serving.setServing(false);
  t.is(await healthStatus(address, 'taste.v1.EmbeddingService'), 'NOT_SERVING');
  t.context.main.serving.setServing(true);
  t.is(await healthStatus(address, ''), 'SERVING');
});

test('reflection lists the embedding and health services (v1 and v1alpha)', async (t) => {
  for (const version of ['v1', 'v1alpha'] as const) {
    const services = await reflectedServices(t.context.main.serving.address, version);
    t.true(services.includes('taste.v1.EmbeddingService'), services.join(','));
    t.true(services.includes('grpc.health.v1.Health'), services.join(','));
  }
});

test('bad configuration fails at construction with the fix in the message', async (t) => {
  const store = (modelVersion: string): EmbeddingReader => ({ modelVersion, readEmbeddingResults: async () => [] });
  t.throws(() => new EmbeddingService({ stores: [] }), { instanceOf: TasteError, message: /stores is empty/ });
  t.throws(() => new EmbeddingService({ stores: [store('a'), store('b')] }), {
    message: /defaultModelVersion is required with several stores: set it to one of a, b/,
  });
  t.throws(() => new EmbeddingService({ stores: [store('a')], defaultModelVersion: 'b' }), { message: /has no store/ });
  t.throws(() => new EmbeddingService({ stores: [store('a'), store('a')], defaultModelVersion: 'a' }), { message: /two stores/ });
  t.throws(() => new EmbeddingService({ stores: [store('a')], maxBatchSize: 0 }), { message: /maxBatchSize must be/ });
  await t.throwsAsync(startServingServer({ redis: t.context.redis, service: { stores: [store('a')] }, port: 70_000 }), {
    instanceOf: TasteError,
    message: /port must be an integer in 0..65535/,
  });
  await t.throwsAsync(
    startServingServer({ redis: t.context.redis, service: { stores: [store('a')] }, port: 0, tls: { certPath: '/nonexistent.pem', keyPath: '/x' } }),
    { message: /tls.certPath: cannot read/ },
  );
  await t.throwsAsync(
    startServingServer({ redis: t.context.redis, service: { stores: [store('a')] }, port: 0, tls: { certPath: '/a', keyPath: '/b', requireClientCert: true } }),
    { message: /requireClientCert needs tls.caPath/ },
  );
});

// --- helpers: real gRPC clients for the standard services ------------------------------------------

async function healthStatus(address: string, service: string): Promise<string> {
  const Health = grpc.makeClientConstructor(healthService, 'grpc.health.v1.Health');
  const client = new Health(address, grpc.credentials.createInsecure());
  try {
    return await new Promise<string>((resolve, reject) => {
      client['Check']!({ service }, { deadline: Date.now() + 2000 }, (error: grpc.ServiceError | null, response?: { status: string }) =>
        error ? reject(error) : resolve(response?.status ?? ''),
      );
    });
  } finally {
    client.close();
  }
}

interface ReflectionResponse {
  listServicesResponse?: { service: { name: string }[] };
}

async function reflectedServices(address: string, version: 'v1' | 'v1alpha'): Promise<string[]> {
  const protoDir = join(dirname(createRequire(import.meta.url).resolve('@grpc/reflection')), '../proto');
  const definition = protoLoader.loadSync(`grpc/reflection/${version}/reflection.proto`, { includeDirs: [protoDir], defaults: true, oneofs: true });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    grpc: { reflection: Record<string, { ServerReflection: grpc.ServiceClientConstructor }> };
  };
  const Reflection = loaded.grpc.reflection[version]!.ServerReflection;
  const client = new Reflection(address, grpc.credentials.createInsecure());
  try {
    return await new Promise<string[]>((resolve, reject) => {
      const call = client['ServerReflectionInfo']!({ deadline: Date.now() + 2000 }) as grpc.ClientDuplexStream<object, ReflectionResponse>;
      call.on('data', (response: ReflectionResponse) => {
        resolve(response.listServicesResponse?.service.map((entry) => entry.name) ?? []);
        call.end();
      });
      call.on('error', reject);
      call.write({ listServices: '' });
    });
  } finally {
    client.close();
  }
}
