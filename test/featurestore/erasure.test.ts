import anyTest, { type TestFn } from 'ava';
import { ErasureOutcomes, FeatureStore, type RedisClient, type StateUpdate } from '../../featurestore/feature-store.js';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { readTombstones } from '../../featurestore/tombstones.js';
import { EventKinds, type SourcedEvent, Streams, type WindowEvent } from '../../events/window-event.js';
import { Updater } from '../../updater/updater.js';
import { unique } from '../helpers/environment.js';
import { storeTarget } from '../helpers/redis-target.js';

// Erasure against the real Redis (and, from scripts/test-deploy.sh, a 3-master Redis Cluster). The
// expectations are the issue's: every key of the user goes for every model version, a tombstone
// stays at the request time, a writer that read before the erasure loses, events at or before the
// request time are dropped and later ones start afresh. Keys are read back with plain Redis
// commands, not through the store.

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

test.after.always(async (t) => {
  t.context.redis?.disconnect();
});

const T0 = 1_764_000_000_000;

function stores(t: { context: Context }, options: { stateDim?: number } = {}) {
  const prefix = unique('erase');
  const make = (modelVersion: string) => new FeatureStore({ redis: t.context.redis, modelVersion, queryTokens: 0, keyPrefix: prefix, ...options });
  return { prefix, m1: make('m1'), m2: make('m2') };
}

function event(offset: number, eventTimeMs = T0 + offset): WindowEvent {
  return { eventTimeMs, stream: Streams.PLAY, partition: 0, offset, itemId: 2 + offset, kind: EventKinds.PLAY, queryTokens: [] };
}

function update(userId: string, expectedVersion: number, offsets: number[], extra: Partial<StateUpdate> = {}): StateUpdate {
  return {
    userId,
    expectedVersion,
    window: offsets.map((offset) => event(offset)),
    highWater: new Map([['plays:0', Math.max(...offsets)]]),
    embedding: new Float32Array([0.6, 0.8]),
    updatedMs: T0,
    appliedTotal: offsets.length,
    ...extra,
  };
}

/** Every key of the user that exists, by its full name (the hash tag keeps them in one slot: EXISTS per key). */
async function keysOf(redis: RedisClient, prefix: string, userId: string): Promise<string[]> {
  const candidates = ['m1', 'm2', 'versions', 'erased'].map((suffix) => `${prefix}:{${userId}}:${suffix}`);
  const found = await Promise.all(candidates.map((key) => redis.exists(key)));
  return candidates.filter((_, index) => found[index] === 1);
}

test(`[${target.name}] an erasure deletes the user's state for every model version and leaves only a tombstone`, async (t) => {
  const { redis } = t.context;
  const { prefix, m1, m2 } = stores(t);
  const user = unique('user');
  await m1.writeStates([update(user, 0, [1, 2])]);
  await m2.writeStates([update(user, 0, [1])]);
  t.deepEqual(await keysOf(redis, prefix, user), [`${prefix}:{${user}}:m1`, `${prefix}:{${user}}:m2`, `${prefix}:{${user}}:versions`]);

  // Erased through m1's store: it finds m2's key by the versions set, not by a SCAN.
  const [result] = await m1.erase([{ userId: user, requestTimeMs: T0 + 10, requestId: 'req-1' }]);
  t.deepEqual(result, { outcome: ErasureOutcomes.ERASED, keysDeleted: 2 });
  t.deepEqual(await keysOf(redis, prefix, user), [`${prefix}:{${user}}:erased`]);
  t.is(await redis.get(`${prefix}:{${user}}:erased`), `${T0 + 10};req-1`);
  t.is(await redis.pttl(`${prefix}:{${user}}:erased`), -1, 'no lifetime given: the tombstone stays');
  t.deepEqual(await m1.readEmbeddings([user]), [undefined]);
  t.deepEqual(await m2.readEmbeddings([user]), [undefined]);
});

test(`[${target.name}] a stateful model's checkpoint goes with the rest of its state`, async (t) => {
  const { redis } = t.context;
  const { prefix, m1 } = stores(t, { stateDim: 3 });
  const user = unique('user');
  await m1.writeStates([update(user, 0, [1], { checkpoint: { state: new Float32Array([1, 2, 3]), lastEventMs: T0 } })]);
  t.truthy(await redis.hget(`${prefix}:{${user}}:m1`, 'st'));
  await m1.erase([{ userId: user, requestTimeMs: T0 + 10, requestId: 'req-1' }]);
  t.deepEqual(await keysOf(redis, prefix, user), [`${prefix}:{${user}}:erased`]);
});

test(`[${target.name}] a tombstone lives for the lifetime given, counted from the request time`, async (t) => {
  const { redis } = t.context;
  const { prefix, m1 } = stores(t);
  const user = unique('user');
  const now = Date.now();
  await m1.erase([{ userId: user, requestTimeMs: now, requestId: 'req-1' }], { tombstoneLifetimeMs: 60_000 });
  const ttl = await redis.pttl(`${prefix}:{${user}}:erased`);
  t.true(ttl > 50_000 && ttl <= 60_000, `PTTL ${ttl}`);
});

test(`[${target.name}] a user with no state is erased too, and a writer that read before the erasure loses`, async (t) => {
  const { prefix, m1 } = stores(t);
  const user = unique('user');
  // The writer reads "nothing there" (version 0), then the erasure lands: version 0 before and after.
  const [before] = [...(await m1.loadStates([user])).values()];
  t.is(before!.version, 0);
  const [result] = await m1.erase([{ userId: user, requestTimeMs: T0 + 10, requestId: 'req-1' }]);
  t.is(result!.outcome, ErasureOutcomes.ERASED);
  t.deepEqual(await m1.writeStates([update(user, 0, [1])]), ['conflict']);
  t.deepEqual(await keysOf(t.context.redis, prefix, user), [`${prefix}:{${user}}:erased`]);
});

test(`[${target.name}] a writer that read a state before its erasure loses its compare-and-set`, async (t) => {
  const { prefix, m1 } = stores(t);
  const user = unique('user');
  await m1.writeStates([update(user, 0, [1])]);
  await m1.writeStates([update(user, 1, [1, 2])]);
  const read = (await m1.loadStates([user])).get(user)!;
  await m1.erase([{ userId: user, requestTimeMs: T0 + 10, requestId: 'req-1' }]);
  t.deepEqual(await m1.writeStates([update(user, read.version, [1, 2, 3])]), ['conflict']);
  t.deepEqual(await keysOf(t.context.redis, prefix, user), [`${prefix}:{${user}}:erased`]);
});

test(`[${target.name}] a writer loses even when the state was erased and rebuilt to the very version it read`, async (t) => {
  const { prefix, m1 } = stores(t);
  const user = unique('user');
  await m1.writeStates([update(user, 0, [1])]);
  const stale = (await m1.loadStates([user])).get(user)!;
  t.is(stale.version, 1);
  await m1.erase([{ userId: user, requestTimeMs: T0 + 10, requestId: 'req-1' }]);
  // A fresh profile after the erasure reaches version 1 again.
  const fresh = (await m1.loadStates([user])).get(user)!;
  t.deepEqual(await m1.writeStates([update(user, 0, [20], { expectedTombstone: fresh.tombstone!.raw })]), ['written']);
  t.is((await m1.loadStates([user])).get(user)!.version, 1);
  // The writer that read the erased state at version 1 still loses: the state began under another tombstone.
  t.deepEqual(await m1.writeStates([update(user, stale.version, [1, 2])]), ['conflict']);
  const after = (await m1.loadStates([user])).get(user)!;
  t.deepEqual(after.window.map((e) => e.offset), [20]);
  t.deepEqual(after.tombstone, fresh.tombstone, 'a user with state reads the tombstone it began under');
  t.deepEqual((await keysOf(t.context.redis, prefix, user)).sort(), [`${prefix}:{${user}}:erased`, `${prefix}:{${user}}:m1`, `${prefix}:{${user}}:versions`]);
});

test(`[${target.name}] a redelivered or older request changes nothing; a later one erases again`, async (t) => {
  const { redis } = t.context;
  const { prefix, m1 } = stores(t);
  const user = unique('user');
  await m1.erase([{ userId: user, requestTimeMs: T0 + 10, requestId: 'req-1' }]);
  // A fresh profile after the erasure, written by a writer that read the tombstone.
  const state = (await m1.loadStates([user])).get(user)!;
  t.deepEqual(state.tombstone, { atMs: T0 + 10, requestId: 'req-1', raw: `${T0 + 10};req-1` });
  t.deepEqual(await m1.writeStates([update(user, 0, [20], { expectedTombstone: state.tombstone!.raw })]), ['written']);

  const again = await m1.erase([
    { userId: user, requestTimeMs: T0 + 10, requestId: 'req-1' },
    { userId: user, requestTimeMs: T0 + 5, requestId: 'req-0' },
  ]);
  t.deepEqual(again.map((result) => result.outcome), [ErasureOutcomes.ALREADY_ERASED, ErasureOutcomes.ALREADY_ERASED]);
  t.deepEqual((await m1.loadStates([user])).get(user)!.window.map((e) => e.offset), [20], 'the fresh profile is kept');

  const [later] = await m1.erase([{ userId: user, requestTimeMs: T0 + 30, requestId: 'req-2' }]);
  t.deepEqual(later, { outcome: ErasureOutcomes.ERASED, keysDeleted: 1 });
  t.deepEqual(await readTombstones(redis, prefix, [user]), [{ atMs: T0 + 30, requestId: 'req-2', raw: `${T0 + 30};req-2` }]);
  t.deepEqual(await keysOf(redis, prefix, user), [`${prefix}:{${user}}:erased`]);
});

/** A stand-in for the model: the embedding is the window's item ids, so a test sees what was applied. */
const itemsEmbedder = {
  embed: async (windows: readonly (readonly WindowEvent[])[]) => windows.map((window) => Float32Array.from(window.map((e) => e.itemId))),
};

const sourced = (userId: string, events: WindowEvent[]): SourcedEvent[] => events.map((e) => ({ userId, topic: 'plays', event: e }));

test(`[${target.name}] the updater drops events at or before the tombstone; a later event starts a window of its own`, async (t) => {
  const { m1 } = stores(t);
  const updater = new Updater({ store: m1, embedder: itemsEmbedder, maxSeqLen: 8 });
  const user = unique('user');
  await updater.apply(sourced(user, [event(1), event(2)]));
  await m1.erase([{ userId: user, requestTimeMs: T0 + 10, requestId: 'req-1' }]);

  // A replay of the old events, and late ones older than the request: nothing is stored.
  const replay = await updater.apply(sourced(user, [event(1), event(2), event(3, T0 + 10)]));
  t.like(replay, { applied: 0, writes: 0, tombstoneHits: 3 });
  t.deepEqual(await m1.readEmbeddings([user]), [undefined]);

  // One event after the request time, among old ones: the window holds only it.
  const fresh = await updater.apply(sourced(user, [event(4, T0 + 5), event(5, T0 + 11)]));
  t.like(fresh, { applied: 1, writes: 1, tombstoneHits: 1 });
  const state = (await m1.loadStates([user])).get(user)!;
  t.deepEqual(state.window.map((e) => e.offset), [5]);
  t.is(state.appliedTotal, 1);
  t.deepEqual([...(await m1.readEmbeddings([user]))[0]!.vector], [event(5).itemId]);
});

test(`[${target.name}] an erasure before the user's first event wins over their late events`, async (t) => {
  const { m1 } = stores(t);
  const updater = new Updater({ store: m1, embedder: itemsEmbedder, maxSeqLen: 8 });
  const user = unique('user');
  await m1.erase([{ userId: user, requestTimeMs: T0 + 100, requestId: 'req-1' }]);
  const late = await updater.apply(sourced(user, [event(1), event(2), event(3)]));
  t.like(late, { applied: 0, writes: 0, tombstoneHits: 3 });
  t.deepEqual((await m1.loadStates([user])).get(user)!.version, 0);
});

test(`[${target.name}] a model version may not be named like the keys beside the state`, (t) => {
  for (const modelVersion of ['versions', 'erased']) {
    t.throws(() => new FeatureStore({ redis: t.context.redis, modelVersion, queryTokens: 0 }), { message: /reserved/ });
  }
});
