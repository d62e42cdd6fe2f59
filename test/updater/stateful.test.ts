import anyTest, { type TestFn } from 'ava';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FeatureStore, type RedisClient } from '../../featurestore/feature-store.js';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { InferencePool } from '../../model/inference-pool.js';
import { loadModelBundle, type ModelBundle } from '../../model/model-bundle.js';
import type { SourcedEvent, WindowEvent } from '../../events/window-event.js';
import { advancerFor, planStatefulUpdate } from '../../updater/advance.js';
import { Updater } from '../../updater/updater.js';
import { unique } from '../helpers/environment.js';
import { storeTarget } from '../helpers/redis-target.js';

// The stateful kind through the real updater, Redis and onnxruntime-node. The expected embeddings
// come from PyTorch (model/testdata/stateful-parity.json): one pass from the zero state over the
// events in the order the late-event rule applies them, an order the fixture's generator simulates
// on its own (training/taste_training/stateful_export.py), not with this code.

interface Fixture {
  model_version: string;
  atol: number;
  tail_events: number;
  max_step_events: number;
  cases: { name: string; user_id: string; arrivals: WindowEvent[][]; tail_offsets: number[]; user_embedding: number[] }[];
}
const fixture = JSON.parse(
  readFileSync(fileURLToPath(new URL('../../../model/testdata/stateful-parity.json', import.meta.url)), 'utf8'),
) as Fixture;
const MODEL_DIR = fileURLToPath(new URL('../../../model/testdata/stateful-model', import.meta.url));
const TOPIC = 'plays';

interface Context {
  redis: RedisClient;
  bundle: ModelBundle;
  pool: InferencePool;
}
const test = anyTest as TestFn<Context>;
const target = storeTarget();

test.before(async (t) => {
  const redis = createRedisClient({ url: target.url, cluster: target.cluster });
  await waitForRedis(redis);
  const bundle = await loadModelBundle(MODEL_DIR);
  const pool = await InferencePool.start({ bundle, intraOpThreads: 1 });
  t.context = { redis, bundle, pool };
});

test.after.always(async (t) => {
  await t.context.pool?.close();
  t.context.redis?.disconnect();
});

function setup(t: { context: Context }) {
  const { bundle, pool, redis } = t.context;
  const { metadata } = bundle;
  const store = new FeatureStore({
    redis,
    modelVersion: metadata.modelVersion,
    queryTokens: metadata.queryTokens,
    stateDim: metadata.stateful!.stateDim,
    keyPrefix: unique('stateful'),
  });
  const updater = new Updater({ store, advancer: advancerFor(metadata, { embedder: pool, stepper: pool }) });
  return { store, updater };
}

const sourced = (userId: string, events: readonly WindowEvent[]): SourcedEvent[] =>
  events.map((event) => ({ userId, topic: TOPIC, event }));

function maxAbsDiff(actual: Float32Array, expected: readonly number[]): number {
  if (actual.length !== expected.length) return Number.POSITIVE_INFINITY;
  return Math.max(...expected.map((value, index) => Math.abs(value - actual[index]!)));
}

test('the model contract names the stateful kind and its shape', (t) => {
  const { metadata } = t.context.bundle;
  t.is(metadata.kind, 'stateful');
  t.is(metadata.modelVersion, fixture.model_version);
  t.is(metadata.stateful?.tailEvents, fixture.tail_events);
  t.is(metadata.stateful?.maxStepEvents, fixture.max_step_events);
  t.is(metadata.maxSeqLen, fixture.tail_events, 'the stored window of a stateful model is its tail');
});

for (const testCase of fixture.cases) {
  test(`[${target.name}] ${testCase.name}: the stored embedding equals one PyTorch pass over the applied order`, async (t) => {
    const { store, updater } = setup(t);
    const user = unique(testCase.user_id);
    for (const chunk of testCase.arrivals) await updater.apply(sourced(user, chunk));
    const [stored] = await store.readEmbeddings([user]);
    t.truthy(stored);
    const diff = maxAbsDiff(stored!.vector, testCase.user_embedding);
    t.true(diff <= fixture.atol, `max abs diff ${diff} > ${fixture.atol}`);
    const state = (await store.loadStates([user])).get(user)!;
    t.deepEqual(state.window.map((event) => event.offset), testCase.tail_offsets);
    t.is(state.appliedTotal, testCase.arrivals.flat().length);
    t.is(state.checkpoint?.state.length, t.context.bundle.metadata.stateful!.stateDim);
  });
}

test(`[${target.name}] any chunking gives the same bytes, and redelivered events change nothing`, async (t) => {
  const { store, updater } = setup(t);
  const events = fixture.cases.find((c) => c.name === 'in_order_chunks')!.arrivals.flat();
  const one = unique('one-chunk');
  const singles = unique('singles');
  await updater.apply(sourced(one, events));
  for (const event of events) await updater.apply(sourced(singles, [event]));
  const before = await t.context.redis.hgetallBuffer(store.key(singles));
  const redelivered = await updater.apply(sourced(singles, events.slice(3, 11)));
  t.is(redelivered.applied, 0);
  t.is(redelivered.duplicates, 8);
  t.deepEqual(await t.context.redis.hgetallBuffer(store.key(singles)), before);
  const [a, b] = await store.readEmbeddings([one, singles]);
  t.true(maxAbsDiff(a!.vector, [...b!.vector]) <= fixture.atol);
  const [stateA, stateB] = [...(await store.loadStates([one, singles])).values()];
  t.deepEqual(stateA!.window, stateB!.window);
  t.true(maxAbsDiff(stateA!.checkpoint!.state, [...stateB!.checkpoint!.state]) <= fixture.atol);
});

test('the late-event rule, planned: the tail keeps the newest events, older ones settle in event order', (t) => {
  const at = (offset: number, timeMs: number): WindowEvent => ({
    eventTimeMs: timeMs, stream: 0, partition: 0, offset, itemId: 2, kind: 1, queryTokens: [],
  });
  const tail = [at(5, 50), at(6, 60), at(7, 70)];
  const plan = planStatefulUpdate(tail, [at(8, 65), at(9, 10)], 3);
  // the event at t=10 is older than the whole tail: it is applied first, at the checkpoint's end
  t.deepEqual(plan.events.map((event) => event.offset), [9, 5, 6, 8, 7]);
  t.is(plan.settle, 2);
  t.deepEqual(plan.window.map((event) => event.offset), [6, 8, 7]);
});
