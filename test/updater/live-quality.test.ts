import anyTest, { type TestFn } from 'ava';
import { FeatureStore, type RedisClient } from '../../featurestore/feature-store.js';
import { readQualityTotals } from '../../featurestore/live-quality.js';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { EventKinds, type EventKind, type SourcedEvent, Streams } from '../../events/window-event.js';
import type { ModelBundle } from '../../model/model-bundle.js';
import { advancerFor } from '../../updater/advance.js';
import { LiveQuality } from '../../updater/live-quality.js';
import { Updater } from '../../updater/updater.js';
import { unique } from '../helpers/environment.js';
import { storeTarget } from '../helpers/redis-target.js';
import { type LoadedModel as Model, type PrimaryAndShadowContext as Context, withPrimaryAndShadow } from '../helpers/primary-and-shadow.js';

// Live quality in the updater, with the real ONNX Runtime and Redis: the windowed default model as
// primary and the stateful model as shadow. The expected ranks are computed here from each
// version's stored embedding and item table, with a plain loop, not through the code under test.

const TOPIC = 'plays';
const T0 = 1_764_000_000_000;

const test = anyTest as TestFn<Context>;
const target = storeTarget();
withPrimaryAndShadow(test);

interface Setup {
  prefix: string;
  stores: FeatureStore[];
  updater: Updater;
  quality: LiveQuality;
  recordFailures: string[];
}

function setup(t: { context: Context }, sampleRate: number, redis: RedisClient = t.context.redis): Setup {
  const prefix = unique('quality');
  const models = [t.context.primary, t.context.shadow];
  const stores = models.map(({ bundle: { metadata } }) => new FeatureStore({
    redis: t.context.redis,
    modelVersion: metadata.modelVersion,
    queryTokens: metadata.queryTokens,
    ...(metadata.stateful ? { stateDim: metadata.stateful.stateDim } : {}),
    keyPrefix: prefix,
  }));
  const recordFailures: string[] = [];
  const quality = new LiveQuality({
    sampleRate,
    itemTables: new Map(models.map(({ bundle }) => [bundle.metadata.modelVersion, bundle.itemTable])),
    redis,
    keyPrefix: prefix,
    onRecordFailed: (version) => recordFailures.push(version),
  });
  const advancerOf = ({ bundle, pool }: Model) => advancerFor(bundle.metadata, { embedder: pool, stepper: pool });
  const updater = new Updater({
    store: stores[0]!,
    advancer: advancerOf(t.context.primary),
    shadows: [{ store: stores[1]!, advancer: advancerOf(t.context.shadow) }],
    liveQuality: quality,
  });
  return { prefix, stores, updater, quality, recordFailures };
}

/** One event of `userId` at partition 0, `offset`, a minute apart per offset. */
function play(userId: string, offset: number, itemId: number, kind: EventKind = EventKinds.PLAY, minute = offset): SourcedEvent {
  const event = { eventTimeMs: T0 + minute * 60_000, stream: Streams.PLAY, partition: 0, offset, itemId, kind, queryTokens: [] };
  return { userId, topic: TOPIC, event, shadowEvents: [{ ...event }] };
}

function history(userId: string, n: number): SourcedEvent[] {
  return Array.from({ length: n }, (_, offset) => play(userId, offset, 2 + ((offset * 7) % 40)));
}

/** 0-based rank of `itemId` among the non-reserved items (ids >= 2), by a plain dot product: how many score strictly higher. */
function expectedRank(bundle: ModelBundle, embedding: Float32Array, itemId: number): number {
  const { vectors, dim, rows } = bundle.itemTable;
  const score = (id: number) => {
    let sum = 0;
    for (let d = 0; d < dim; d++) sum += embedding[d]! * vectors[id * dim + d]!;
    return sum;
  };
  const targetScore = score(itemId);
  let higher = 0;
  for (let id = 2; id < rows; id++) if (score(id) > targetScore) higher++;
  return higher;
}

function totalsOfRank(rank: number) {
  return { samples: 1, hits10: rank < 10 ? 1 : 0, ndcg10Sum: rank < 10 ? 1 / Math.log2(rank + 2) : 0, reciprocalRankSum: 1 / (rank + 1) };
}

test(`[${target.name}] a sampled play is ranked against the embedding each version held just before it, and the totals reach Redis`, async (t) => {
  const s = setup(t, 1);
  const user = unique('user');
  const first = await s.updater.apply(history(user, 12));
  t.deepEqual(first.quality, [], 'a user without an embedding yet is not scored');

  const before = await Promise.all(s.stores.map((store) => store.readEmbeddings([user])));
  const next = play(user, 12, 17);
  const summary = await s.updater.apply([next]);
  t.is(summary.applied, 1);
  const models = [t.context.primary, t.context.shadow];
  const expected = models.map((model, index) => ({
    modelVersion: model.bundle.metadata.modelVersion,
    totals: totalsOfRank(expectedRank(model.bundle, before[index]![0]!.vector, 17)),
  }));
  t.is(summary.quality.length, 2);
  summary.quality.forEach((got, index) => {
    t.is(got.modelVersion, expected[index]!.modelVersion);
    t.is(got.totals.samples, 1);
    t.is(got.totals.hits10, expected[index]!.totals.hits10);
    t.true(Math.abs(got.totals.ndcg10Sum - expected[index]!.totals.ndcg10Sum) < 1e-12);
    t.true(Math.abs(got.totals.reciprocalRankSum - expected[index]!.totals.reciprocalRankSum) < 1e-12, `${got.modelVersion}: reciprocal rank`);
  });

  const stored = await readQualityTotals(t.context.redis, s.prefix, expected.map((e) => e.modelVersion), Date.now(), 1);
  for (const { modelVersion, totals } of expected) {
    const got = stored.get(modelVersion)!;
    t.is(got.samples, 1, `${modelVersion} in Redis`);
    t.is(got.hits10, totals.hits10);
    t.true(Math.abs(got.reciprocalRankSum - totals.reciprocalRankSum) < 1e-9);
  }
  t.deepEqual(s.recordFailures, []);
});

test(`[${target.name}] only plays whose embedding-before is stored are scored: not a redelivery, a late play, a skip, an unknown item, nor a user's second play of a step`, async (t) => {
  const s = setup(t, 1);
  const user = unique('user');
  await s.updater.apply(history(user, 10));

  const redelivered = await s.updater.apply([play(user, 9, 2 + ((9 * 7) % 40))]);
  t.is(redelivered.duplicates, 1);
  t.deepEqual(redelivered.quality, [], 'a redelivered play');

  const late = await s.updater.apply([play(user, 10, 5, EventKinds.PLAY, 4.5)]);
  t.is(late.applied, 1);
  t.deepEqual(late.quality, [], 'a play older than the newest applied one');

  const skip = await s.updater.apply([play(user, 11, 5, EventKinds.SKIPPED, 11)]);
  t.is(skip.applied, 1);
  t.deepEqual(skip.quality, [], 'a skip is not a target (as offline)');

  const unknown = await s.updater.apply([play(user, 12, 1, EventKinds.PLAY, 12)]);
  t.is(unknown.applied, 1);
  t.deepEqual(unknown.quality, [], 'an item the model does not know');

  const two = await s.updater.apply([play(user, 13, 6, EventKinds.COMPLETED, 13), play(user, 14, 7, EventKinds.PLAY, 14)]);
  t.is(two.applied, 2);
  t.deepEqual(two.quality.map((q) => q.totals.samples), [1, 1], 'the earliest play of the step only, in both versions');
});

test(`[${target.name}] at rate 0 nothing is read or scored`, async (t) => {
  const s = setup(t, 0);
  const user = unique('user');
  await s.updater.apply(history(user, 5));
  const summary = await s.updater.apply([play(user, 5, 9)]);
  t.is(summary.applied, 1);
  t.deepEqual(summary.quality, []);
});

test(`[${target.name}] totals that cannot reach Redis are reported and lost; the step still applies`, async (t) => {
  const closed = createRedisClient({ url: target.url, cluster: target.cluster });
  await waitForRedis(closed);
  closed.disconnect();
  const s = setup(t, 1, closed);
  const user = unique('user');
  await s.updater.apply(history(user, 5));
  const summary = await s.updater.apply([play(user, 5, 9)]);
  t.is(summary.applied, 1);
  t.is(summary.quality.length, 2);
  t.deepEqual(s.recordFailures.sort(), [t.context.primary.bundle.metadata.modelVersion, t.context.shadow.bundle.metadata.modelVersion].sort());
});

test('the sample is chosen by Kafka coordinates: the same answer every time, near the rate, plays and completions only', (t) => {
  const tables = new Map();
  const quality = (rate: number) => new LiveQuality({ sampleRate: rate, itemTables: tables, redis: undefined as never, keyPrefix: 'x' });
  const tenth = quality(0.1);
  const n = 20_000;
  const events = Array.from({ length: n }, (_, offset) => play('u', offset, 5));
  const share = events.filter((event) => tenth.isSampled(event)).length / n;
  // 4 standard errors of a share of 0.1 over 20,000 events.
  t.true(Math.abs(share - 0.1) < 4 * Math.sqrt((0.1 * 0.9) / n), `sampled share ${share}`);
  t.deepEqual(events.map((event) => tenth.isSampled(event)), events.map((event) => quality(0.1).isSampled({ ...event })));
  t.true(events.every((event) => quality(1).isSampled(event)));
  t.false(events.some((event) => quality(0).isSampled(event)));
  t.false(quality(1).isSampled(play('u', 1, 5, EventKinds.SKIPPED)));
  t.false(quality(1).isSampled(play('u', 1, 5, EventKinds.SEARCH)));
  t.true(quality(1).isSampled(play('u', 1, 5, EventKinds.COMPLETED)));
  t.throws(() => quality(1.5), { message: /sample rate must be in 0\.\.1/ });
});
