import anyTest, { type TestFn } from 'ava';
import { ErrorCodes, TasteError } from '../../common/errors.js';
import { FeatureStore, type UserState } from '../../featurestore/feature-store.js';
import { InferencePool } from '../../model/inference-pool.js';
import { EventKinds, type SourcedEvent, Streams, type WindowEvent } from '../../events/window-event.js';
import { advancerFor, type Stepper } from '../../updater/advance.js';
import { type ShadowModel, Updater } from '../../updater/updater.js';
import { unique } from '../helpers/environment.js';
import { storeTarget } from '../helpers/redis-target.js';
import { type LoadedModel as Model, type PrimaryAndShadowContext as Context, withPrimaryAndShadow } from '../helpers/primary-and-shadow.js';

// A primary (the windowed default model) and a shadow (the stateful model) advanced by one updater,
// with the real ONNX Runtime and Redis. What each version must hold comes from running that model
// alone, through the single-model path, on a key prefix of its own.

const TOPIC = 'plays';

const test = anyTest as TestFn<Context>;
const target = storeTarget();
withPrimaryAndShadow(test);

function storeOf(t: { context: Context }, model: Model, keyPrefix: string): FeatureStore {
  const { metadata } = model.bundle;
  return new FeatureStore({
    redis: t.context.redis,
    modelVersion: metadata.modelVersion,
    queryTokens: metadata.queryTokens,
    ...(metadata.stateful ? { stateDim: metadata.stateful.stateDim } : {}),
    keyPrefix,
  });
}

function advancerOf(model: Model, stepper: Stepper = model.pool) {
  return advancerFor(model.bundle.metadata, { embedder: model.pool, stepper });
}

/** Plays of one user at offsets 0..n-1 of partition 0; the shadow's features are its own objects (same vocabulary here). */
function plays(userId: string, n: number, itemOf = (offset: number) => 2 + ((offset * 7) % 40)): SourcedEvent[] {
  return Array.from({ length: n }, (_, offset) => {
    const event: WindowEvent = { eventTimeMs: 1_764_000_000_000 + offset * 60_000, stream: Streams.PLAY, partition: 0, offset, itemId: itemOf(offset), kind: EventKinds.PLAY, queryTokens: [] };
    return { userId, topic: TOPIC, event, shadowEvents: [{ ...event }] };
  });
}

/** What a state holds that the events decide (the version counter depends on how many writes it took). */
function content(state: UserState) {
  return { window: state.window, highWater: state.highWater, appliedTotal: state.appliedTotal, checkpoint: state.checkpoint };
}

function closeTo(t: { true: (ok: boolean, message?: string) => void }, actual: Float32Array | undefined, expected: Float32Array | undefined, what: string) {
  t.true(actual !== undefined && expected !== undefined && actual.length === expected.length, `${what}: both embeddings there`);
  const diff = Math.max(...Array.from(expected!, (value, index) => Math.abs(value - actual![index]!)));
  t.true(diff < 1e-5, `${what}: max abs difference ${diff}`);
}

/** Each model run alone through the single-model updater, on a prefix of its own: what each version must hold. */
async function alone(t: { context: Context }, model: Model, events: readonly SourcedEvent[], shadowFeatures: boolean) {
  const store = storeOf(t, model, unique('alone'));
  const own = shadowFeatures ? events.map((sourced) => ({ userId: sourced.userId, topic: sourced.topic, event: sourced.shadowEvents![0]! })) : events;
  await new Updater({ store, advancer: advancerOf(model) }).apply(own);
  return store;
}

test(`[${target.name}] a shadow advances from the same events to exactly what it would hold alone, and redeliveries change neither version`, async (t) => {
  const prefix = unique('shadows');
  const primaryStore = storeOf(t, t.context.primary, prefix);
  const shadowStore = storeOf(t, t.context.shadow, prefix);
  const updater = new Updater({ store: primaryStore, advancer: advancerOf(t.context.primary), shadows: [{ store: shadowStore, advancer: advancerOf(t.context.shadow) }] });
  const users = [unique('user'), unique('user'), unique('user')];
  const events = users.flatMap((user, index) => plays(user, 3 + 9 * index));

  const first = await updater.apply(events.slice(0, 10));
  const rest = await updater.apply(events.slice(10));
  t.is(first.applied + rest.applied, events.length);
  t.deepEqual(
    [first, rest].map((summary) => summary.shadows.map(({ modelVersion, applied, active }) => ({ modelVersion, applied, active }))),
    [
      [{ modelVersion: shadowStore.modelVersion, applied: 10, active: true }],
      [{ modelVersion: shadowStore.modelVersion, applied: events.length - 10, active: true }],
    ],
  );

  const expectedPrimary = await alone(t, t.context.primary, events, false);
  const expectedShadow = await alone(t, t.context.shadow, events, true);
  for (const [store, expected, what] of [
    [primaryStore, expectedPrimary, 'primary'],
    [shadowStore, expectedShadow, 'shadow'],
  ] as const) {
    const [states, wanted] = [await store.loadStates(users), await expected.loadStates(users)];
    for (const user of users) t.deepEqual(content(states.get(user)!), content(wanted.get(user)!), `${what} state of ${user}`);
    const [got, want] = [await store.readEmbeddings(users), await expected.readEmbeddings(users)];
    users.forEach((user, index) => closeTo(t, got[index]?.vector, want[index]?.vector, `${what} embedding of ${user}`));
  }

  const again = await updater.apply(events);
  t.is(again.applied, 0);
  t.is(again.duplicates, events.length);
  t.is(again.shadows[0]!.applied, 0);
  t.deepEqual(
    (await shadowStore.loadStates(users)).get(users[2]!)!.appliedTotal,
    21,
    'the shadow counts each event once',
  );
});

test(`[${target.name}] a shadow that fails the whole step is suspended; the primary writes on and the shadow is not touched again`, async (t) => {
  const prefix = unique('shadows');
  const primaryStore = storeOf(t, t.context.primary, prefix);
  const shadowStore = storeOf(t, t.context.shadow, prefix);
  // A real pool, closed: every run of it fails as a dead pool's does.
  const broken = await InferencePool.start({ bundle: t.context.shadow.bundle, intraOpThreads: 1 });
  await broken.close();
  let shadowCalls = 0;
  const counting: Stepper = {
    step: (steps) => {
      shadowCalls++;
      return broken.step(steps);
    },
  };
  const shadow: ShadowModel = { store: shadowStore, advancer: advancerOf(t.context.shadow, counting) };
  const updater = new Updater({ store: primaryStore, advancer: advancerOf(t.context.primary), shadows: [shadow], shadowAttempts: 2 });
  const [a, b] = [unique('user'), unique('user')];

  const first = await updater.apply([...plays(a, 2), ...plays(b, 3)]);
  t.is(first.applied, 5);
  t.false(first.shadows[0]!.active);
  t.regex(first.shadows[0]!.suspendedNow ?? '', /closed/i);
  t.deepEqual(updater.shadowStatus, [{ modelVersion: shadowStore.modelVersion, suspended: first.shadows[0]!.suspendedNow }]);
  t.deepEqual(await shadowStore.readEmbeddings([a, b]), [undefined, undefined]);
  const callsWhenSuspended = shadowCalls;
  t.is(callsWhenSuspended, 1, 'a failure retrying cannot fix is not retried');

  const second = await updater.apply(plays(a, 4));
  t.is(second.applied, 2);
  t.false(second.shadows[0]!.active);
  t.is(second.shadows[0]!.suspendedNow, undefined, 'suspended once, on the step it happened');
  t.is(shadowCalls, callsWhenSuspended, 'a suspended shadow is not run again');
  t.is((await primaryStore.loadStates([a])).get(a)!.appliedTotal, 4);
});

test(`[${target.name}] a shadow whose inference fails once for a reason worth retrying is tried again, and runs on`, async (t) => {
  const prefix = unique('shadows');
  const primaryStore = storeOf(t, t.context.primary, prefix);
  const shadowStore = storeOf(t, t.context.shadow, prefix);
  const pool = t.context.shadow.pool;
  let calls = 0;
  const flaky: Stepper = {
    step: (steps) => (++calls === 1 ? Promise.reject(new TasteError(ErrorCodes.INFERENCE_UNAVAILABLE, 'no worker for a moment', { canRetry: true })) : pool.step(steps)),
  };
  const updater = new Updater({ store: primaryStore, advancer: advancerOf(t.context.primary), shadows: [{ store: shadowStore, advancer: advancerOf(t.context.shadow, flaky) }] });
  const user = unique('user');
  const summary = await updater.apply(plays(user, 3));
  t.like(summary.shadows[0], { applied: 3, active: true });
  t.is(calls, 2);
  t.is((await shadowStore.readEmbeddings([user]))[0]?.eventsInWindow, 3);
});

test(`[${target.name}] a shadow's refusal of one user costs that user's events in the shadow only, and is not the primary's dead letter`, async (t) => {
  const prefix = unique('shadows');
  const primaryStore = storeOf(t, t.context.primary, prefix);
  const shadowStore = storeOf(t, t.context.shadow, prefix);
  const POISON_ITEM = 41;
  // The real model's output, with NaN for any step holding the poison item.
  const pool = t.context.shadow.pool;
  const poisoning: Stepper = {
    step: async (steps) => {
      const results = await pool.step(steps);
      return results.map((result, index) => (steps[index]!.events.some((event) => event.itemId === POISON_ITEM) ? { ...result, embedding: result.embedding.map(() => Number.NaN) } : result));
    },
  };
  const updater = new Updater({ store: primaryStore, advancer: advancerOf(t.context.primary), shadows: [{ store: shadowStore, advancer: advancerOf(t.context.shadow, poisoning) }] });
  const [poisoned, healthy] = [unique('user'), unique('user')];
  const summary = await updater.apply([...plays(poisoned, 3, () => POISON_ITEM), ...plays(healthy, 3)]);
  t.is(summary.applied, 6);
  t.deepEqual(summary.rejected, []);
  t.like(summary.shadows[0], { applied: 3, writes: 1, rejectedEvents: 3, active: true });
  const [poisonedShadow, healthyShadow] = await shadowStore.readEmbeddings([poisoned, healthy]);
  t.is(poisonedShadow, undefined);
  t.is(healthyShadow?.eventsInWindow, 3);
});

test(`[${target.name}] when another writer moves the shadow mid-step, the user is retried in both versions and each event lands once in each`, async (t) => {
  const prefix = unique('shadows');
  const primaryStore = storeOf(t, t.context.primary, prefix);
  const shadowStore = storeOf(t, t.context.shadow, prefix);
  const user = unique('user');
  const events = plays(user, 6);
  // A second writer of the shadow version alone (a backfill of it, say), racing the first step.
  const rival = new Updater({ store: shadowStore, advancer: advancerOf(t.context.shadow) });
  let raced = false;
  const pool = t.context.shadow.pool;
  const racing: Stepper = {
    step: async (steps) => {
      if (!raced) {
        raced = true;
        await rival.apply(events.slice(0, 2).map((sourced) => ({ userId: sourced.userId, topic: sourced.topic, event: sourced.shadowEvents![0]! })));
      }
      return pool.step(steps);
    },
  };
  const updater = new Updater({ store: primaryStore, advancer: advancerOf(t.context.primary), shadows: [{ store: shadowStore, advancer: advancerOf(t.context.shadow, racing) }] });
  const summary = await updater.apply(events);
  t.is(summary.conflicts, 1);
  t.is(summary.applied, 6);
  t.is(summary.shadows[0]!.applied, 4, 'the rival applied the first two');
  t.is((await primaryStore.loadStates([user])).get(user)!.appliedTotal, 6);
  const shadowState = (await shadowStore.loadStates([user])).get(user)!;
  t.is(shadowState.appliedTotal, 6);
  const expected = await alone(t, t.context.shadow, events, true);
  t.deepEqual(content(shadowState), content((await expected.loadStates([user])).get(user)!));
});

test('primary and shadows must be different model versions', async (t) => {
  const store = storeOf(t, t.context.primary, unique('shadows'));
  const error = t.throws(() => new Updater({ store, advancer: advancerOf(t.context.primary), shadows: [{ store, advancer: advancerOf(t.context.primary) }] }));
  t.regex(error?.message ?? '', /given twice/);
});
