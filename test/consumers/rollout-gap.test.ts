import anyTest, { type TestFn } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBackfillJob } from '../../backfill/job.js';
import type { StreamJob } from '../../consumers/stream-job.js';
import type { FeatureStore } from '../../featurestore/feature-store.js';
import { DEFAULT_MODEL_DIR, eventually, KAFKA_BROKERS, REDIS_URL, unique } from '../helpers/environment.js';
import { copyModelAsVersion } from '../helpers/onnx.js';
import { play, sendPlays, singlePartitionTopics, type StreamJobContext, testLogger, withStreamJobs } from '../helpers/pipeline.js';

// The runbook's rollout, step 3 (docs/runbook.md, "Close the gap first"): a backfill of the new
// version ends at the log end it saw at its start, while the live group moves on. Rewinding the
// (stopped) group to the backfill's end offsets before the shadow starts gives the new version
// every event once; the live version re-reads that stretch and drops it as already applied.
// The shadow is the default model under another version, so its states must equal the primary's.

const test = anyTest as TestFn<StreamJobContext>;
const job = withStreamJobs(test);

async function appliedTotal(store: FeatureStore, users: readonly string[]): Promise<number> {
  const states = await store.loadStates(users);
  return [...states.values()].reduce((sum, state) => sum + state.appliedTotal, 0);
}

function windowFeatures(store: FeatureStore, users: readonly string[]) {
  return store.loadStates(users).then((states) =>
    users.map((user) => states.get(user)!.window.map(({ eventTimeMs, itemId, kind }) => ({ eventTimeMs, itemId, kind }))),
  );
}

test('backfill, live events meanwhile, group rewound to the backfill\'s end, then the shadow: the new version holds every event once', async (t) => {
  t.timeout(180_000);
  const scratch = await mkdtemp(join(tmpdir(), 'taste-rollout-gap-'));
  t.teardown(() => rm(scratch, { recursive: true, force: true }));
  const shadowDir = await copyModelAsVersion(DEFAULT_MODEL_DIR, join(scratch, 'next'), unique('next'));
  const topics = await singlePartitionTopics(t);
  const groupId = unique('group');
  const keyPrefix = unique('gap');
  const users = [unique('user'), unique('user'), unique('user')];
  const at = Date.now() - 3_600_000;
  const batch = (first: number) => users.flatMap((user) => [0, 1, 2].map((n) => play(user, `taste:track:${first + n}`, at + (first + n) * 1000)));

  // Before the rollout: the live model alone.
  const live = await job(t, { topics, groupId, keyPrefix });
  await sendPlays(t.context.producer, topics.play, batch(10));
  await eventually(async () => ((await appliedTotal(live.store, users)) === 9 ? true : undefined), 'the first events applied');

  // Step 2: the new version's backfill, over the topic as it is now.
  const admin = t.context.kafka.admin();
  await admin.connect();
  t.teardown(() => admin.disconnect());
  const [backfillEnd] = await admin.fetchTopicOffsets(topics.play);
  const filled = await runBackfillJob({
    input: { kind: 'kafka', kafka: { brokers: KAFKA_BROKERS, clientId: 'taste-test' }, topics: { play: topics.play, search: topics.search } },
    modelDir: shadowDir,
    redis: { url: REDIS_URL },
    keyPrefix,
    intraOpThreads: 1,
    logger: testLogger,
  });
  t.is(filled.applied, 9);

  // Live traffic goes on while the shadow is not deployed yet.
  await sendPlays(t.context.producer, topics.play, batch(20));
  await eventually(async () => ((await appliedTotal(live.store, users)) === 18 ? true : undefined), 'the events after the backfill applied by the live model');

  // Step 3: stop the consumers, rewind the empty group to the backfill's end, deploy with the shadow.
  await live.stop();
  await admin.setOffsets({ groupId, topic: topics.play, partitions: [{ partition: 0, offset: backfillEnd!.high }] });
  const withShadow: StreamJob = await job(t, { topics, groupId, keyPrefix, shadowModelDirs: [shadowDir] });
  const shadow = withShadow.shadows[0]!.store;
  await sendPlays(t.context.producer, topics.play, batch(30));
  await eventually(
    async () => ((await appliedTotal(withShadow.store, users)) === 27 && (await appliedTotal(shadow, users)) === 27 ? true : undefined),
    'both versions at every event',
  );
  t.is(withShadow.consumer.stats.duplicates, 9, 'the live model re-read the rewound stretch and dropped it as applied');
  t.deepEqual(await windowFeatures(shadow, users), await windowFeatures(withShadow.store, users), 'the new version holds what the live one holds');
});
