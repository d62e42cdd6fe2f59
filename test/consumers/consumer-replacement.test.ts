import anyTest, { type TestFn } from 'ava';
import type { Consumer } from 'kafkajs';
import { streamJobObserver } from '../../metrics/observers.js';
import { PipelineMetrics } from '../../metrics/pipeline-metrics.js';
import { eventually, unique } from '../helpers/environment.js';
import { play, sendPlays, type StreamJobContext, uniqueTopics, withStreamJobs } from '../helpers/pipeline.js';

// kafkajs restarts its consumer only after errors it deems retriable. After any other, and when its
// fetch loop simply stops, the consumer stays stopped while the process lives on: the member keeps
// its place in no group, commits nothing, and its partitions stall without an error. The stream
// consumer must notice and start a new kafkajs consumer.

const test = anyTest as TestFn<StreamJobContext>;
const job = withStreamJobs(test);

test('a step that throws an error kafkajs does not retry (a TypeError) costs a consumer replacement, not the partition', async (t) => {
  let calls = 0;
  const readiness: boolean[] = [];
  const metrics = new PipelineMetrics({ defaultMetrics: false });
  const topics = uniqueTopics();
  const stream = await job(t, {
    topics,
    observer: streamJobObserver(metrics),
    onReadinessChange: (ready) => readiness.push(ready),
    decorateEmbedder: (pool) => ({
      embed: (windows) => {
        calls++;
        // A bug of ours, once: kafkajs wraps it as non-retriable and would stop for good.
        if (calls === 1) throw new TypeError('injected: cannot read properties of undefined');
        return pool.embed(windows);
      },
    }),
  });
  await stream.consumer.joined;

  const users = Array.from({ length: 3 }, () => unique('user'));
  const at = Date.now() - 10_000;
  await sendPlays(t.context.producer, topics.play, users.map((user) => play(user, 'taste:track:3', at)));

  const written = await eventually(async () => {
    const found = await stream.store.readEmbeddings(users);
    return found.every((embedding) => embedding?.eventsInWindow === 1) ? found : undefined;
  }, 'every event applied by the replacement consumer', 60_000);
  t.is(written.length, 3);
  t.is(stream.consumer.stats.replacements, 1);
  t.is(stream.consumer.stats.applied, 3, 'each event applied once: the crashed step had written nothing');
  t.deepEqual(readiness, [true, false, true], 'not ready from the crash until the replacement joined');
  t.regex(await metrics.registry.metrics(), /taste_consumer_replacements_total\{reason="crashed"\} 1/);
});

test('a kafkajs consumer that stops without a word is taken for stalled after the stall timeout and replaced', async (t) => {
  const made: Consumer[] = [];
  const metrics = new PipelineMetrics({ defaultMetrics: false });
  const topics = uniqueTopics();
  const stream = await job(t, {
    topics,
    observer: streamJobObserver(metrics),
    stallTimeoutMs: 3_000,
    createConsumer: (kafka, config) => {
      const consumer = kafka.consumer(config);
      made.push(consumer);
      return consumer;
    },
  });
  await stream.consumer.joined;
  const [first, second] = [unique('user'), unique('user')];
  const at = Date.now() - 10_000;
  await sendPlays(t.context.producer, topics.play, [play(first, 'taste:track:3', at)]);
  await eventually(async () => ((await stream.store.readEmbeddings([first]))[0] ? true : undefined), 'the first event applied', 30_000);

  // The fetch loop ends as kafkajs's own does when it gives up quietly: no crash event, no error.
  await made[0]!.stop();
  await sendPlays(t.context.producer, topics.play, [play(second, 'taste:track:4', at + 1000)]);

  await eventually(async () => ((await stream.store.readEmbeddings([second]))[0] ? true : undefined), 'the next event applied by a replacement', 60_000);
  t.is(made.length, 2);
  t.is(stream.consumer.stats.replacements, 1);
  t.regex(await metrics.registry.metrics(), /taste_consumer_replacements_total\{reason="stalled"\} 1/);
});
