import anyTest, { type TestFn } from 'ava';
import { join } from 'node:path';
import { type BackfillJobOptions, runBackfillJob } from '../../backfill/job.js';
import { resolveKafkaRanges } from '../../backfill/kafka-range.js';
import { ErrorCodes, TasteError } from '../../common/errors.js';
import { createKafka, ensureTopics } from '../../consumers/kafka.js';
import type { StreamJob } from '../../consumers/stream-job.js';
import type { StreamTopics } from '../../consumers/stream-consumer.js';
import type { WindowEvent } from '../../events/window-event.js';
import { encodePlayEvent, encodeSearchEvent } from '../../proto/event-codec.js';
import type { EventRecord } from '../../events/event-record.js';
import { DEFAULT_MODEL_DIR, eventually, KAFKA_BROKERS, REDIS_URL, unique } from '../helpers/environment.js';
import { type StreamJobContext, testLogger, uniqueTopics, withStreamJobs } from '../helpers/pipeline.js';
import { history, tempDir, writeJsonl } from './helpers.js';

const test = anyTest as TestFn<StreamJobContext>;
const job = withStreamJobs(test);
const HOUR = 3_600_000;

async function stop(t: { context: StreamJobContext }, stream: StreamJob): Promise<void> {
  await stream.stop();
  t.context.jobs.splice(t.context.jobs.indexOf(stream), 1);
}

/** Produces events keyed by user, each with its event time as the record timestamp. */
async function produce(t: { context: StreamJobContext }, topics: StreamTopics, events: readonly EventRecord[]): Promise<void> {
  const plays = events.filter((e) => e.kind === 'play');
  const searches = events.filter((e) => e.kind === 'search');
  const message = (e: EventRecord) => ({
    key: e.event.userId,
    timestamp: String(e.event.eventTimeMs),
    value: e.kind === 'play' ? encodePlayEvent(e.event) : encodeSearchEvent(e.event),
  });
  await t.context.producer.sendBatch({
    acks: -1,
    topicMessages: [
      { topic: topics.play, messages: plays.map(message) },
      { topic: topics.search, messages: searches.map(message) },
    ],
  });
}

async function createTopics(t: { context: StreamJobContext }, topics: StreamTopics): Promise<void> {
  await ensureTopics(t.context.kafka, [
    { topic: topics.play, partitions: 2 },
    { topic: topics.search, partitions: 2 },
    { topic: topics.deadLetter, partitions: 1 },
  ]);
}

function kafkaBackfill(topics: StreamTopics, keyPrefix: string, options: Partial<BackfillJobOptions> = {}) {
  return runBackfillJob({
    // Small fetches: every range takes many of them.
    input: { kind: 'kafka', kafka: { brokers: KAFKA_BROKERS, clientId: 'taste-test' }, topics: { play: topics.play, search: topics.search }, maxBytesPerPartition: 2048 },
    modelDir: DEFAULT_MODEL_DIR,
    redis: { url: REDIS_URL },
    keyPrefix,
    intraOpThreads: 1,
    logger: testLogger,
    ...options,
  });
}

async function totals(stream: StreamJob, users: readonly string[]): Promise<number> {
  const states = await stream.store.loadStates(users);
  return [...states.values()].reduce((sum, state) => sum + state.appliedTotal, 0);
}

function features(window: readonly WindowEvent[]) {
  return window.map(({ eventTimeMs, stream, itemId, kind, queryTokens }) => ({ eventTimeMs, stream, itemId, kind, queryTokens: [...queryTokens] }));
}

test('a Kafka time-range backfill applies only its range and never re-applies what the stream applied', async (t) => {
  const topics = uniqueTopics();
  await createTopics(t, topics);
  const keyPrefix = unique('bfk');
  const groupId = unique('group');
  const name = unique('u');
  const users = [...Array(6).keys()].map((u) => `${name}-${u}`);
  const start = Date.now() - 5 * HOUR;
  // Three phases an hour apart: A (streamed first), B (in the backfill's range), C (after it).
  const phase = (index: number) => history(name, 6, 8, start + index * HOUR);
  const [a, b, c] = [phase(0), phase(1), phase(2)];

  await produce(t, topics, a);
  const first = await job(t, { topics, groupId, keyPrefix });
  await eventually(async () => ((await totals(first, users)) === a.length ? true : undefined), 'phase A streamed');
  await stop(t, first);
  await produce(t, topics, [...b, ...c]);

  const summary = await kafkaBackfill(topics, keyPrefix, { sinceMs: start - 60_000, untilMs: start + 2 * HOUR });
  t.is(summary.stoppedBy, 'complete');
  t.is(summary.events, a.length + b.length, 'the range is A and B');
  t.is(summary.duplicates, a.length, 'A was applied by the stream: not again');
  t.is(summary.applied, b.length);

  // The stream resumes from its committed offsets (after A): B is already applied, C is new.
  const second = await job(t, { topics, groupId, keyPrefix });
  await eventually(async () => (second.consumer.stats.messages >= b.length + c.length ? true : undefined), 'B and C streamed');
  t.is(second.consumer.stats.duplicates, b.length, 'the stream drops what the backfill applied');
  t.is(second.consumer.stats.applied, c.length);
  t.is(await totals(second, users), a.length + b.length + c.length, 'every event applied exactly once');

  // The same topics streamed from scratch into another prefix: the same windows, coordinates included.
  const reference = await job(t, { topics, groupId: unique('group'), keyPrefix: unique('bfk') });
  await eventually(async () => ((await totals(reference, users)) === a.length + b.length + c.length ? true : undefined), 'reference stream');
  const [mixed, pure] = await Promise.all([second.store.loadStates(users), reference.store.loadStates(users)]);
  for (const user of users) t.deepEqual(mixed.get(user)!.window, pure.get(user)!.window, user);
});

test('a Kafka range backfill honours --user, and a range with nothing in it is a no-op', async (t) => {
  const topics = uniqueTopics();
  await createTopics(t, topics);
  const name = unique('u');
  const start = Date.now() - 3 * HOUR;
  const events = history(name, 5, 6, start);
  await produce(t, topics, events);
  const keyPrefix = unique('bfk');
  const summary = await kafkaBackfill(topics, keyPrefix, { users: new Set([`${name}-2`]) });
  t.is(summary.events, 6);
  t.is(summary.filtered, events.length - 6);
  t.is(summary.applied, 6);
  const empty = await kafkaBackfill(topics, unique('bfk'), { sinceMs: Date.now() - 60_000 });
  t.is(empty.records, 0);
  t.is(empty.stoppedBy, 'complete');
});

test('a JSONL backfill gives the same windows as streaming the same events through Kafka', async (t) => {
  const topics = uniqueTopics();
  await createTopics(t, topics);
  const name = unique('u');
  const users = [...Array(7).keys()].map((u) => `${name}-${u}`);
  const events = history(name, 7, 65, Date.now() - 30 * HOUR);
  await produce(t, topics, events);
  const stream = await job(t, { topics, keyPrefix: unique('bfk') });
  await eventually(async () => ((await totals(stream, users)) === events.length ? true : undefined), 'all streamed', 60_000);

  const dir = await tempDir();
  const path = join(dir, `${name}.jsonl`);
  await writeJsonl(path, events);
  const keyPrefix = unique('bfk');
  const summary = await runBackfillJob({
    input: { kind: 'files', paths: [path] },
    modelDir: DEFAULT_MODEL_DIR,
    redis: { url: REDIS_URL },
    keyPrefix,
    intraOpThreads: 1,
    logger: testLogger,
  });
  t.is(summary.applied, events.length);
  const { FeatureStore } = await import('../../featurestore/feature-store.js');
  const { metadata } = stream.bundle;
  const files = new FeatureStore({ redis: stream.redis, modelVersion: metadata.modelVersion, queryTokens: metadata.queryTokens, keyPrefix });
  const [streamed, filled] = await Promise.all([stream.store.loadStates(users), files.loadStates(users)]);
  const [streamedEmb, filledEmb] = await Promise.all([stream.store.readEmbeddings(users), files.readEmbeddings(users)]);
  users.forEach((user, index) => {
    t.deepEqual(features(filled.get(user)!.window), features(streamed.get(user)!.window), user);
    t.is(filled.get(user)!.appliedTotal, streamed.get(user)!.appliedTotal);
    const x = streamedEmb[index]!.vector;
    const y = filledEmb[index]!.vector;
    const cosine = x.reduce((sum, v, d) => sum + v * y[d]!, 0);
    t.true(cosine > 0.9999, `${user}: cosine ${cosine}`);
    t.is(filledEmb[index]!.lastEventMs, streamedEmb[index]!.lastEventMs);
  });
});

test('a broker that does not answer: the range lookup fails with a retryable TASTE_KAFKA, the kafkajs error as its cause', async (t) => {
  // Port 1 on loopback: nothing listens, so every connection is refused (kafkajs retries, then gives up).
  const kafka = createKafka({ brokers: ['127.0.0.1:1'], clientId: 'taste-test', connectionTimeoutMs: 200 }, testLogger);
  const error = await t.throwsAsync(resolveKafkaRanges(kafka, { play: 'plays', search: 'searches' }), { instanceOf: TasteError });
  t.is(error.code, ErrorCodes.KAFKA);
  t.true(error.canRetry);
  t.regex(error.message, /^could not look up the offsets of plays, searches: .*ECONNREFUSED/);
  t.regex((error.cause as Error).name, /^KafkaJS/);
});

test('a topic that does not exist is named, with the flag that sets it', async (t) => {
  const topics = uniqueTopics();
  await ensureTopics(t.context.kafka, [{ topic: topics.play, partitions: 1 }]);
  const kafka = createKafka({ brokers: KAFKA_BROKERS, clientId: 'taste-test' }, testLogger);
  await t.throwsAsync(resolveKafkaRanges(kafka, { play: topics.play, search: topics.search }), {
    instanceOf: TasteError,
    message: `topic "${topics.search}" does not exist (see --plays-topic / --searches-topic)`,
  });
});
