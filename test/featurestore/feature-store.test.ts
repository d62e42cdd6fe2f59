import anyTest, { type TestFn } from 'ava';
import { ErrorCodes, TasteError } from '../../common/errors.js';
import { FeatureStore, type RedisClient, type StateUpdate } from '../../featurestore/feature-store.js';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { EventKinds, Streams, type WindowEvent } from '../../events/window-event.js';
import { unique } from '../helpers/environment.js';
import { storeTarget } from '../helpers/redis-target.js';

interface Context {
  redis: RedisClient;
  store: FeatureStore;
  prefix: string;
}
const test = anyTest as TestFn<Context>;
const target = storeTarget();

test.before(async (t) => {
  const redis = createRedisClient({ url: target.url, cluster: target.cluster });
  await waitForRedis(redis);
  const prefix = unique('store');
  t.context = { redis, prefix, store: new FeatureStore({ redis, modelVersion: 'm1', queryTokens: 8, keyPrefix: prefix }) };
});

test.after.always(async (t) => {
  t.context.redis?.disconnect();
});

function event(offset: number): WindowEvent {
  return { eventTimeMs: 1_764_000_000_000 + offset, stream: Streams.PLAY, partition: 0, offset, itemId: 2 + offset, kind: EventKinds.PLAY, queryTokens: [] };
}

function update(userId: string, expectedVersion: number, offsets: number[]): StateUpdate {
  return {
    userId,
    expectedVersion,
    window: offsets.map(event),
    highWater: new Map([['plays:0', Math.max(...offsets)]]),
    embedding: new Float32Array([0.6, 0.8]),
    updatedMs: 1_764_000_100_000,
    appliedTotal: offsets.length,
  };
}

test(`[${target.name}] a new user has version 0 and an empty window`, async (t) => {
  const states = await t.context.store.loadStates([unique('user')]);
  const [state] = [...states.values()];
  t.deepEqual(state, { version: 0, window: [], highWater: new Map(), appliedTotal: 0 });
});

test(`[${target.name}] a write lands when the version still holds, and bumps it`, async (t) => {
  const user = unique('user');
  t.deepEqual(await t.context.store.writeStates([update(user, 0, [1, 2])]), ['written']);
  const state = (await t.context.store.loadStates([user])).get(user)!;
  t.is(state.version, 1);
  t.deepEqual(state.window, [event(1), event(2)]);
  t.deepEqual(state.highWater, new Map([['plays:0', 2]]));
  t.is(state.appliedTotal, 2);
  const [embedding] = await t.context.store.readEmbeddings([user]);
  t.deepEqual(embedding, { vector: new Float32Array([0.6, 0.8]), updatedMs: 1_764_000_100_000, lastEventMs: event(2).eventTimeMs, eventsInWindow: 2 });
});

test(`[${target.name}] a stale writer loses and changes nothing`, async (t) => {
  const user = unique('user');
  await t.context.store.writeStates([update(user, 0, [1])]);
  await t.context.store.writeStates([update(user, 1, [1, 2])]);
  t.deepEqual(await t.context.store.writeStates([update(user, 1, [1, 9])]), ['conflict']);
  t.deepEqual(await t.context.store.writeStates([update(user, 0, [7])]), ['conflict']);
  const state = (await t.context.store.loadStates([user])).get(user)!;
  t.is(state.version, 2);
  t.deepEqual(state.window.map((e) => e.offset), [1, 2]);
});

test(`[${target.name}] of two racing writers from the same version exactly one wins`, async (t) => {
  const user = unique('user');
  const outcomes = await Promise.all([
    t.context.store.writeStates([update(user, 0, [1])]),
    t.context.store.writeStates([update(user, 0, [2])]),
  ]);
  t.deepEqual(outcomes.flat().sort(), ['conflict', 'written']);
  t.is((await t.context.store.loadStates([user])).get(user)!.version, 1);
});

test(`[${target.name}] batched reads and writes cover many users across slots`, async (t) => {
  const users = Array.from({ length: 200 }, () => unique('user'));
  const outcomes = await t.context.store.writeStates(users.map((user, index) => update(user, 0, [index])));
  t.true(outcomes.every((outcome) => outcome === 'written'));
  const embeddings = await t.context.store.readEmbeddings([...users, unique('missing')]);
  t.is(embeddings.filter(Boolean).length, 200);
  t.is(embeddings[200], undefined);
});

test(`[${target.name}] keys are per model version and keep the user in a hash tag`, async (t) => {
  const other = new FeatureStore({ redis: t.context.redis, modelVersion: 'm2', queryTokens: 8, keyPrefix: t.context.prefix });
  const user = unique('user');
  await t.context.store.writeStates([update(user, 0, [1])]);
  t.deepEqual(await other.readEmbeddings([user]), [undefined]);
  t.is(t.context.store.key(user), `${t.context.prefix}:{${user}}:m1`);
});

test('an unreachable Redis is a retryable STORE_UNAVAILABLE error, not a hang', async (t) => {
  const redis = createRedisClient({ url: 'redis://127.0.0.1:1', commandTimeoutMs: 500 });
  redis.on('error', () => undefined);
  const store = new FeatureStore({ redis, modelVersion: 'm1', queryTokens: 8 });
  const error = await t.throwsAsync(store.loadStates(['someone']), { instanceOf: TasteError });
  t.is(error?.code, ErrorCodes.STORE_UNAVAILABLE);
  t.true(error?.canRetry);
  redis.disconnect();
});

test(`[${target.name}] a state no reader can decode starts over instead of failing every batch`, async (t) => {
  const user = unique('user');
  await t.context.store.writeStates([update(user, 0, [1, 2])]);
  await t.context.redis.hset(t.context.store.key(user), 'win', 'not a window');
  const state = (await t.context.store.loadStates([user])).get(user)!;
  t.true(state.corrupt);
  t.deepEqual(state.window, []);
  t.is(state.version, 1, 'the version is kept, so the next write still goes through compare-and-set');
  t.deepEqual(await t.context.store.writeStates([update(user, 1, [3])]), ['written']);
  t.falsy((await t.context.store.loadStates([user])).get(user)!.corrupt);
});

test(`[${target.name}] query token ids past 65,535 come back unchanged for a model of 2^24 query buckets`, async (t) => {
  const store = new FeatureStore({ redis: t.context.redis, modelVersion: 'wide', queryTokens: 8, queryBuckets: 1 << 24, keyPrefix: t.context.prefix });
  const user = unique('user');
  const tokens = [3, 65_536, 70_001, (1 << 24) - 1];
  const search: WindowEvent = { eventTimeMs: 1_764_000_000_000, stream: Streams.SEARCH, partition: 0, offset: 1, itemId: 2, kind: EventKinds.SEARCH, queryTokens: tokens };
  t.deepEqual(await store.writeStates([{ ...update(user, 0, [1]), window: [search] }]), ['written']);
  t.deepEqual((await store.loadStates([user])).get(user)!.window[0]!.queryTokens, tokens);
});

// Writes across versions: a primary and its shadows advance together, or not at all.

function shadowStore(t: { context: Context }, modelVersion = 'm2'): FeatureStore {
  return new FeatureStore({ redis: t.context.redis, modelVersion, queryTokens: 8, keyPrefix: t.context.prefix, stateDim: 3 });
}

test(`[${target.name}] a write across versions lands in every version at once and lists them for erasure`, async (t) => {
  const { store, redis, prefix } = t.context;
  const shadow = shadowStore(t);
  const user = unique('user');
  const checkpoint = { state: new Float32Array([1, 2, 3]), lastEventMs: 5 };
  const outcomes = await store.writeAcrossVersions([
    [
      { store, update: update(user, 0, [1, 2]) },
      { store: shadow, update: { ...update(user, 0, [1, 2]), embedding: new Float32Array([1, 0, 0]), checkpoint } },
    ],
  ]);
  t.deepEqual(outcomes, ['written']);
  const primary = (await store.loadStates([user])).get(user)!;
  const shadowed = (await shadow.loadStates([user])).get(user)!;
  t.is(primary.version, 1);
  t.is(shadowed.version, 1);
  t.deepEqual(shadowed.checkpoint, checkpoint);
  t.deepEqual((await shadow.readEmbeddings([user]))[0]?.vector, new Float32Array([1, 0, 0]));
  t.deepEqual((await store.readEmbeddings([user]))[0]?.vector, new Float32Array([0.6, 0.8]));
  t.deepEqual((await redis.smembers(`${prefix}:{${user}}:versions`)).sort(), ['m1', 'm2']);
});

test(`[${target.name}] when one version's compare-and-set fails, no version is written`, async (t) => {
  const { store } = t.context;
  const shadow = shadowStore(t);
  const user = unique('user');
  await shadow.writeStates([update(user, 0, [1])]); // another writer moved the shadow to version 1
  const outcomes = await store.writeAcrossVersions([
    [
      { store, update: update(user, 0, [1, 2]) },
      { store: shadow, update: update(user, 0, [1, 2]) },
    ],
  ]);
  t.deepEqual(outcomes, ['conflict']);
  t.is((await store.loadStates([user])).get(user)!.version, 0, 'the primary was not written either');
  t.deepEqual((await shadow.loadStates([user])).get(user)!.window.map((e) => e.offset), [1]);
});

test(`[${target.name}] an erasure between the read and a write across versions makes the write lose in every version`, async (t) => {
  const { store } = t.context;
  const shadow = shadowStore(t);
  const user = unique('user');
  const states = await store.loadStates([user]); // read before the erasure: no tombstone
  await store.erase([{ userId: user, requestTimeMs: 1_764_000_000_500, requestId: unique('request') }]);
  const expected = states.get(user)!.version;
  t.deepEqual(
    await store.writeAcrossVersions([
      [
        { store, update: update(user, expected, [1]) },
        { store: shadow, update: update(user, expected, [1]) },
      ],
    ]),
    ['conflict'],
  );
  t.deepEqual(await store.readEmbeddings([user]), [undefined]);
  t.deepEqual(await shadow.readEmbeddings([user]), [undefined]);
});

test(`[${target.name}] many users across slots are written across versions in one call, each on its own`, async (t) => {
  const { store } = t.context;
  const shadow = shadowStore(t);
  const users = Array.from({ length: 50 }, () => unique('user'));
  await shadow.writeStates([update(users[7]!, 0, [1])]);
  const outcomes = await store.writeAcrossVersions(users.map((user, index) => [{ store, update: update(user, 0, [index]) }, { store: shadow, update: update(user, 0, [index]) }]));
  t.deepEqual(
    outcomes,
    users.map((_, index) => (index === 7 ? 'conflict' : 'written')),
  );
  t.is((await store.readEmbeddings(users)).filter(Boolean).length, 49);
});

test('a write across versions refuses parts that cannot share one step', async (t) => {
  const { store, redis } = t.context;
  const otherPrefix = new FeatureStore({ redis, modelVersion: 'm2', queryTokens: 8, keyPrefix: unique('other') });
  const user = unique('user');
  for (const parts of [
    [{ store, update: update(user, 0, [1]) }, { store: otherPrefix, update: update(user, 0, [1]) }],
    [{ store, update: update(user, 0, [1]) }, { store: shadowStore(t), update: update(unique('user'), 0, [1]) }],
    [{ store, update: update(user, 0, [1]) }, { store, update: update(user, 0, [1]) }],
    [],
  ]) {
    const error = await t.throwsAsync(store.writeAcrossVersions([parts]), { instanceOf: TasteError });
    t.is(error?.code, ErrorCodes.CONFIG_INVALID);
  }
});
