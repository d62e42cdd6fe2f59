import test from 'ava';
import { EventFeaturizer } from '../../events/featurizer.js';
import { EventTypes } from '../../events/event-record.js';
import { advancerFor } from '../../updater/advance.js';
import { Updater } from '../../updater/updater.js';
import type { SourcedEvent } from '../../events/window-event.js';
import { LONG, readAll } from './harness.js';
import { Scenario } from './scenario.js';

test('a second writer replaying the same events beside the stream: each event applied once, no stale overwrite', async (t) => {
  t.timeout(LONG ? 20 * 60_000 : 4 * 60_000);
  const s = await Scenario.start(t, { stream: { events: LONG ? 60_000 : 10_000, users: 300, seed: 15, poisonEvery: 300 } });
  await s.produced();
  s.watchVersions();

  const consumer = s.consumer();
  await consumer.waitStarted();

  // The replayer reads the same records (same coordinates) and applies them through its own
  // updater and model session, racing the stream user by user.
  const { metadata, vocabulary } = s.bundle;
  const featurizer = new EventFeaturizer({ vocabulary, queryTokens: metadata.queryTokens, queryBuckets: metadata.queryBuckets });
  const updater = new Updater({ store: s.store, advancer: advancerFor(metadata, { embedder: s.pool, stepper: s.pool }) });
  const records = await readAll(s.kafka, [s.topics.play, s.topics.search]);
  let replayed = 0;
  let conflicts = 0;
  for (let start = 0; start < records.length; start += 250) {
    const events: SourcedEvent[] = [];
    for (const record of records.slice(start, start + 250)) {
      const result = featurizer.featurize(record.topic === s.topics.play ? EventTypes.PLAY : EventTypes.SEARCH, record, Date.now());
      if (result.ok) events.push(result.event);
    }
    const summary = await updater.apply(events);
    replayed += summary.applied;
    conflicts += summary.conflicts;
  }

  const recovery = await s.drained();
  consumer.kill('SIGTERM');
  await consumer.exited;

  const verdict = await s.verify();
  await s.report({ scenario: `second writer (replayer applied ${replayed}, lost races ${conflicts})`, faults: 'concurrent replay of all events', verdict, recoveryMs: recovery.ms });
  s.assertExactlyOnce(recovery.lag, verdict);
});
