import anyTest, { type TestFn } from 'ava';
import { StateFields } from '../../featurestore/keys.js';
import { streamJobObserver } from '../../metrics/observers.js';
import { PipelineMetrics } from '../../metrics/pipeline-metrics.js';
import { eventually, unique } from '../helpers/environment.js';
import { play, sendPlays, type StreamJobContext, uniqueTopics, withStreamJobs } from '../helpers/pipeline.js';

const test = anyTest as TestFn<StreamJobContext>;
const job = withStreamJobs(test);

// What a foreign or broken writer might leave in a field; each must cost that user its state only.
const damage: [field: string, value: string][] = [
  [StateFields.version, 'not a version'],
  [StateFields.version, ''],
  [StateFields.version, '1.5'],
  [StateFields.version, '-2'],
  [StateFields.highWater, 'plays:0:x'],
  [StateFields.window, 'not a window'],
  [StateFields.appliedTotal, 'NaN'],
];

test('a user whose stored state does not parse starts over (logged and counted) while the partition keeps flowing', async (t) => {
  const metrics = new PipelineMetrics({ defaultMetrics: false });
  const topics = uniqueTopics();
  const stream = await job(t, { topics, observer: streamJobObserver(metrics), topicPartitions: 1 });
  const redis = stream.redis;
  const users = damage.map(() => unique('user'));
  const healthy = unique('user');
  const at = Date.now() - 60_000;
  await sendPlays(t.context.producer, topics.play, [...users, healthy].flatMap((user) => [play(user, 'taste:track:3', at), play(user, 'taste:track:4', at + 1000)]));
  await eventually(async () => ((await stream.store.readEmbeddings([...users, healthy])).every((found) => found?.eventsInWindow === 2) ? true : undefined), 'first events');

  await Promise.all(users.map((user, index) => redis.hset(stream.store.key(user), damage[index]![0], damage[index]![1])));
  // One more play each, the healthy user's after the damaged ones on the same partition.
  await sendPlays(t.context.producer, topics.play, [...users, healthy].map((user) => play(user, 'taste:track:5', at + 2000)));

  const records = 3 * (users.length + 1);
  await eventually(async () => (stream.consumer.stats.messages === records ? true : undefined), 'every record through its step (and committed)', 30_000);
  t.is((await stream.store.readEmbeddings([healthy]))[0]?.eventsInWindow, 3);
  const states = await stream.store.loadStates(users);
  users.forEach((user, index) => {
    const state = states.get(user)!;
    const [field, value] = damage[index]!;
    t.falsy(state.corrupt, `${field}=${JSON.stringify(value)}: rewritten whole`);
    t.deepEqual(state.window.map((event) => event.eventTimeMs), [at + 2000], `${field}=${JSON.stringify(value)}: started over from the next event`);
    t.is(state.appliedTotal, 1);
    t.true(state.version >= 1);
  });
  t.regex(await metrics.registry.metrics(), new RegExp(`taste_corrupt_states_total ${damage.length}\\b`));
});
