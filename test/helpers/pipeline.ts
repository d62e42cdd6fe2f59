import type { TestFn } from 'ava';
import { createLogger, type LogLevel } from '../../common/logger.js';
import { createKafka, createProducer, ensureTopics, type Kafka, type Producer } from '../../consumers/kafka.js';
import { startStreamJob, type StreamJob, type StreamJobOptions } from '../../consumers/stream-job.js';
import type { StreamTopics } from '../../consumers/stream-consumer.js';
import { encodePlayEvent, encodeSearchEvent } from '../../proto/event-codec.js';
import type { PlayEvent, PlayEvent__Output } from '../../proto/generated/taste/v1/PlayEvent.js';
import type { SearchEvent, SearchEvent__Output } from '../../proto/generated/taste/v1/SearchEvent.js';
import { DeadLetterHeaders } from '../../consumers/dead-letter.js';
import { DEFAULT_MODEL_DIR, eventually, KAFKA_BROKERS, REDIS_URL, unique } from './environment.js';

export const testLogger = createLogger((process.env.TASTE_TEST_LOG_LEVEL as LogLevel | undefined) ?? 'silent');

export function uniqueTopics(): StreamTopics {
  const id = unique('t');
  return { play: `${id}.plays`, search: `${id}.searches`, deadLetter: `${id}.dead-letter` };
}

/** Fresh topics of one partition each, created: every record of a test lands in one ordered log. */
export async function singlePartitionTopics(t: { context: StreamJobContext }): Promise<StreamTopics> {
  const topics = uniqueTopics();
  await ensureTopics(t.context.kafka, [
    { topic: topics.play, partitions: 1 },
    { topic: topics.search, partitions: 1 },
    { topic: topics.deadLetter, partitions: 1 },
  ]);
  return topics;
}

export function testKafka(): Kafka {
  return createKafka({ brokers: KAFKA_BROKERS, clientId: 'taste-test' }, testLogger);
}

/** A stream job on its own topics, group and key prefix, against the real services. */
export function startTestJob(overrides: Partial<StreamJobOptions> & { topics: StreamTopics }): Promise<StreamJob> {
  return startStreamJob({
    modelDir: DEFAULT_MODEL_DIR,
    kafka: { brokers: KAFKA_BROKERS, clientId: 'taste-test' },
    redis: { url: REDIS_URL },
    logger: testLogger,
    groupId: unique('group'),
    keyPrefix: unique('test'),
    intraOpThreads: 1,
    ...overrides,
  });
}

/** What a file of stream-job tests shares: a Kafka client, a connected producer, the jobs it started. */
export interface StreamJobContext {
  kafka: Kafka;
  producer: Producer;
  jobs: StreamJob[];
}

/**
 * Gives the file's tests a StreamJobContext (connected before, every job stopped and the producer
 * closed after) and returns `job(t, options)`, which starts a test job the file will stop.
 */
export function withStreamJobs(test: TestFn<StreamJobContext>): (t: { context: StreamJobContext }, ...args: Parameters<typeof startTestJob>) => Promise<StreamJob> {
  test.before(async (t) => {
    const kafka = testKafka();
    // Idempotent: a send kafkajs retries after a partial failure (a partition of a new topic without
    // its leader yet) must not write the records that did land a second time, or a test's counts
    // would see producer duplicates, not the pipeline's work (seen once in CI: 12 events for 6).
    const producer = createProducer(kafka, { idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    t.context = { kafka, producer, jobs: [] };
  });
  test.after.always(async (t) => {
    await Promise.all(t.context.jobs.map((job) => job.stop().catch(() => undefined)));
    await t.context.producer.disconnect();
  });
  return async (t, ...args) => {
    const started = await startTestJob(...args);
    t.context.jobs.push(started);
    return started;
  };
}

export function play(userId: string, itemUri: string, eventTimeMs: number, extra: Partial<PlayEvent__Output> = {}): PlayEvent__Output {
  return {
    userId,
    itemUri,
    itemKind: 'ITEM_KIND_TRACK',
    eventTimeMs,
    msPlayed: 200_000,
    itemDurationMs: 200_000,
    context: 'PLAY_CONTEXT_PLAYLIST',
    endReason: 'END_REASON_COMPLETED',
    ...extra,
  };
}

export function search(userId: string, query: string, eventTimeMs: number, clickedItemUri = ''): SearchEvent__Output {
  return { userId, query, eventTimeMs, clickedItemUri, clickedItemKind: clickedItemUri ? 'ITEM_KIND_TRACK' : 'ITEM_KIND_UNSPECIFIED' };
}

export async function sendPlays(producer: Producer, topic: string, events: readonly PlayEvent[]): Promise<void> {
  await producer.send({ topic, acks: -1, messages: events.map((event) => ({ key: event.userId ?? null, value: encodePlayEvent(event) })) });
}

export async function sendSearches(producer: Producer, topic: string, events: readonly SearchEvent[]): Promise<void> {
  await producer.send({ topic, acks: -1, messages: events.map((event) => ({ key: event.userId ?? null, value: encodeSearchEvent(event) })) });
}

export interface ReadDeadLetter {
  reason: string;
  detail: string;
  topic: string;
  offset: string;
  key: string;
}

/** Reads the dead-letter topic from the start until `count` records are there (with their headers). */
export async function readDeadLetters(kafka: Kafka, topic: string, count: number, timeoutMs = 30_000): Promise<ReadDeadLetter[]> {
  const consumer = kafka.consumer({ groupId: unique('dlq-reader') });
  const letters: ReadDeadLetter[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const header = (name: string) => message.headers?.[name]?.toString() ?? '';
        letters.push({
          reason: header(DeadLetterHeaders.reason),
          detail: header(DeadLetterHeaders.detail),
          topic: header(DeadLetterHeaders.topic),
          offset: header(DeadLetterHeaders.offset),
          key: message.key?.toString() ?? '',
        });
      },
    });
    await eventually(async () => (letters.length >= count ? true : undefined), `${count} dead letters on ${topic}`, timeoutMs);
  } finally {
    await consumer.disconnect();
  }
  return letters;
}
