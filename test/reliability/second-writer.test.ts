import test from 'ava';
import { EventFeaturizer } from '../../events/featurizer.js';
import { EventTypes } from '../../events/event-record.js';
import { advancerFor } from '../../updater/advance.js';
import { Updater } from '../../updater/updater.js';
import type { SourcedEvent } from '../../events/window-event.js';
import { KAFKA_BROKERS, REDIS_URL } from '../helpers/environment.js';
import { scenarioContext } from './context.js';
import {
  assertExactlyOnce,
  ConsumerProcess,
  consumerArgs,
  groundTruth,
  LONG,
  produceStream,
  readAll,
  report,
  simulatedUserIds,
  verify,
  VersionWatcher,
  waitForLagZero,
} from './harness.js';

test('a second writer replaying the same events beside the stream: each event applied once, no stale overwrite', async (t) => {
  t.timeout(LONG ? 20 * 60_000 : 4 * 60_000);
  const ctx = await scenarioContext();
  t.teardown(() => ctx.close());
  const spec = { events: LONG ? 60_000 : 10_000, users: 300, seed: 15, poisonEvery: 300 };
  const sent = await produceStream(ctx.kafka, ctx.topics, spec);
  const truth = await groundTruth(ctx.kafka, ctx.topics, ctx.bundle);
  const watcher = new VersionWatcher(ctx.store, simulatedUserIds(spec).slice(0, 100));
  watcher.start();

  const consumer = new ConsumerProcess(consumerArgs(ctx.topics, ctx.groupId, ctx.keyPrefix), {
    TASTE_KAFKA_BROKERS: KAFKA_BROKERS.join(','),
    TASTE_REDIS_URL: REDIS_URL,
  });
  await consumer.waitStarted();

  // The replayer reads the same records (same coordinates) and applies them through its own
  // updater and model session, racing the stream user by user.
  const { metadata, vocabulary } = ctx.bundle;
  const featurizer = new EventFeaturizer({ vocabulary, queryTokens: metadata.queryTokens, queryBuckets: metadata.queryBuckets });
  const updater = new Updater({ store: ctx.store, advancer: advancerFor(metadata, { embedder: ctx.pool, stepper: ctx.pool }) });
  const records = await readAll(ctx.kafka, [ctx.topics.play, ctx.topics.search]);
  let replayed = 0;
  let conflicts = 0;
  for (let start = 0; start < records.length; start += 250) {
    const events: SourcedEvent[] = [];
    for (const record of records.slice(start, start + 250)) {
      const result = featurizer.featurize(record.topic === ctx.topics.play ? EventTypes.PLAY : EventTypes.SEARCH, record, Date.now());
      if (result.ok) events.push(result.event);
    }
    const summary = await updater.apply(events);
    replayed += summary.applied;
    conflicts += summary.conflicts;
  }

  const recovery = await waitForLagZero(ctx.kafka, ctx.groupId, [ctx.topics.play, ctx.topics.search]);
  consumer.kill('SIGTERM');
  await consumer.exited;
  watcher.stop();

  const verdict = await verify(ctx.store, truth.users, ctx.pool);
  report({ scenario: `second writer (replayer applied ${replayed}, lost races ${conflicts})`, events: sent.records, faults: 'concurrent replay of all events', verdict, regressions: watcher.regressions.length, recoveryMs: recovery.ms });
  assertExactlyOnce(t, { lag: recovery.lag, verdict, regressions: watcher.regressions });
});
