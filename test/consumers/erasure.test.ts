import anyTest, { type TestFn } from 'ava';
import * as grpc from '@grpc/grpc-js';
import { join } from 'node:path';
import { runBackfillJob } from '../../backfill/job.js';
import { sendErasureRequests } from '../../consumers/erasure-requests.js';
import { consumerGroupLag } from '../../consumers/kafka.js';
import type { StreamJob } from '../../consumers/stream-job.js';
import type { StreamTopics } from '../../consumers/stream-consumer.js';
import { encodeErasureRequest } from '../../proto/erasure-codec.js';
import { createEmbeddingClient, getUserEmbedding } from '../../serving/client.js';
import { startServingServer } from '../../serving/server.js';
import { DEFAULT_MODEL_DIR, eventually, KAFKA_BROKERS, REDIS_URL, unique } from '../helpers/environment.js';
import { play, readDeadLetters, sendPlays, type StreamJobContext, testLogger, uniqueTopics, withStreamJobs } from '../helpers/pipeline.js';
import { simPlay, tempDir, writeJsonl } from '../backfill/helpers.js';

// Erasure through the whole pipeline, against the real Kafka, Redis and model: the request goes
// on its topic, the stream job applies it, and nothing that still holds the user's old events (a
// replay from the earliest offset, a Kafka-range backfill, a file backfill) brings them back.
// What "gone" means is read with plain Redis commands and over gRPC, not through the store.

const test = anyTest as TestFn<StreamJobContext>;
const job = withStreamJobs(test);

function erasureTopics(): StreamTopics & { erasure: string } {
  const topics = uniqueTopics();
  return { ...topics, erasure: `${topics.play}.erasures` };
}

/** The user's keys under `prefix` that exist (SCAN: the test looks everywhere, the code never does). */
async function keysOf(stream: StreamJob, prefix: string, userId: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await stream.redis.scan(cursor, 'MATCH', `${prefix}:{${userId}}:*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys.sort();
}

const eventsOf = async (stream: StreamJob, userId: string) => (await stream.store.readEmbeddings([userId]))[0]?.eventsInWindow;

async function drained(t: { context: StreamJobContext }, groupId: string, topics: StreamTopics & { erasure: string }): Promise<void> {
  await eventually(
    async () => ((await consumerGroupLag(t.context.kafka, groupId, [topics.play, topics.search, topics.erasure])) === 0 ? true : undefined),
    'the group to commit every record',
    60_000,
  );
}

test.serial('an erased listener is gone at once and stays gone through a replay from the earliest offset, a Kafka-range and a file backfill', async (t) => {
  const topics = erasureTopics();
  const groupId = unique('group');
  const keyPrefix = unique('erase');
  const first = await job(t, { topics, groupId, keyPrefix });
  const server = await startServingServer({ service: { stores: [first.store] }, redis: first.redis, port: 0 });
  const client = createEmbeddingClient(server.address);
  t.teardown(async () => {
    client.close();
    await server.close();
  });

  const erased = unique('erased');
  const kept = unique('kept');
  const start = Date.now() - 3_600_000;
  const history = [0, 1, 2].map((i) => play(erased, `taste:track:${10 + i}`, start + i * 1000));
  await sendPlays(t.context.producer, topics.play, [...history, play(kept, 'taste:track:3', start), play(kept, 'taste:track:4', start + 1000)]);
  await eventually(async () => ((await eventsOf(first, erased)) === 3 && (await eventsOf(first, kept)) === 2 ? true : undefined), 'both users applied');
  t.is((await getUserEmbedding(client, { userId: erased })).embedding?.eventsInWindow, 3);

  const requestTimeMs = Date.now();
  await sendErasureRequests(t.context.producer, topics.erasure, [{ userId: erased, requestTimeMs, requestId: 'req-a1' }]);
  await eventually(
    async () => {
      try {
        await getUserEmbedding(client, { userId: erased });
        return undefined;
      } catch (error) {
        return (error as grpc.ServiceError).code === grpc.status.NOT_FOUND ? true : undefined;
      }
    },
    'serving to answer NOT_FOUND for the erased user',
  );
  t.deepEqual(await keysOf(first, keyPrefix, erased), [`${keyPrefix}:{${erased}}:erased`]);
  t.is(await first.redis.get(`${keyPrefix}:{${erased}}:erased`), `${requestTimeMs};req-a1`);

  // 1. The group rewound to the earliest offset of every topic, the erasure request included:
  //    every event is delivered again, and so is the request (a redelivery).
  await drained(t, groupId, topics);
  await first.stop();
  t.context.jobs.splice(t.context.jobs.indexOf(first), 1);
  const admin = t.context.kafka.admin();
  await admin.connect();
  for (const topic of [topics.play, topics.search, topics.erasure]) await admin.resetOffsets({ groupId, topic, earliest: true });
  await admin.disconnect();
  const second = await job(t, { topics, groupId, keyPrefix });
  await drained(t, groupId, topics);
  t.deepEqual(await keysOf(second, keyPrefix, erased), [`${keyPrefix}:{${erased}}:erased`], 'the replay did not bring the user back');
  t.is(await second.redis.get(`${keyPrefix}:{${erased}}:erased`), `${requestTimeMs};req-a1`, 'the redelivered request changed nothing');
  t.is((await second.store.loadStates([kept])).get(kept)!.appliedTotal, 2, 'the other user: neither lost nor applied twice');

  // 2. A Kafka-range backfill over the same topics.
  const ranged = await runBackfillJob({
    input: { kind: 'kafka', kafka: { brokers: KAFKA_BROKERS, clientId: 'taste-test' }, topics: { play: topics.play, search: topics.search } },
    modelDir: DEFAULT_MODEL_DIR,
    redis: { url: REDIS_URL },
    keyPrefix,
    intraOpThreads: 1,
    logger: testLogger,
  });
  t.is(ranged.erased, 3, 'the backfill counts the erased user\'s events as dropped');
  t.deepEqual(await keysOf(second, keyPrefix, erased), [`${keyPrefix}:{${erased}}:erased`], 'the Kafka-range backfill did not bring the user back');

  // 3. A file backfill of the same history (files are sources of their own: no offset marks them applied).
  const dir = await tempDir();
  const file = join(dir, 'history.jsonl');
  await writeJsonl(file, history.map((event) => simPlay(event.userId, event.itemUri, event.eventTimeMs)));
  const filed = await runBackfillJob({ input: { kind: 'files', paths: [file] }, modelDir: DEFAULT_MODEL_DIR, redis: { url: REDIS_URL }, keyPrefix, intraOpThreads: 1, logger: testLogger });
  t.like(filed, { applied: 0, erased: 3 });
  t.deepEqual(await keysOf(second, keyPrefix, erased), [`${keyPrefix}:{${erased}}:erased`], 'the file backfill did not bring the user back');
});

test('an event after the request time starts a fresh profile holding only that event', async (t) => {
  const topics = erasureTopics();
  const stream = await job(t, { topics });
  const user = unique('reset');
  await sendPlays(t.context.producer, topics.play, [play(user, 'taste:track:1', Date.now() - 60_000), play(user, 'taste:track:2', Date.now() - 50_000)]);
  await eventually(async () => ((await eventsOf(stream, user)) === 2 ? true : undefined), 'the old profile');
  const requestTimeMs = Date.now() - 1000;
  await sendErasureRequests(t.context.producer, topics.erasure, [{ userId: user, requestTimeMs, requestId: 'reset-1' }]);
  await eventually(async () => ((await eventsOf(stream, user)) === undefined ? true : undefined), 'the erasure');

  await sendPlays(t.context.producer, topics.play, [play(user, 'taste:track:3', Date.now() - 30_000), play(user, 'taste:track:4', requestTimeMs + 1)]);
  await eventually(async () => ((await eventsOf(stream, user)) === 1 ? true : undefined), 'the fresh profile');
  const state = (await stream.store.loadStates([user])).get(user)!;
  t.deepEqual(state.window.map((event) => event.eventTimeMs), [requestTimeMs + 1]);
  t.is(state.appliedTotal, 1);
});

test('an erasure before the user\'s first event wins over their late events', async (t) => {
  const topics = erasureTopics();
  const groupId = unique('group');
  const keyPrefix = unique('erase');
  const stream = await job(t, { topics, groupId, keyPrefix });
  const user = unique('late');
  await sendErasureRequests(t.context.producer, topics.erasure, [{ userId: user, requestTimeMs: Date.now(), requestId: 'early-1' }]);
  await eventually(async () => ((await stream.redis.exists(`${keyPrefix}:{${user}}:erased`)) === 1 ? true : undefined), 'the tombstone');
  await sendPlays(t.context.producer, topics.play, [play(user, 'taste:track:1', Date.now() - 7_200_000), play(user, 'taste:track:2', Date.now() - 3_600_000)]);
  await drained(t, groupId, topics);
  t.deepEqual(await keysOf(stream, keyPrefix, user), [`${keyPrefix}:{${user}}:erased`]);
});

test('malformed erasure requests go to the dead-letter topic with their reason', async (t) => {
  const topics = erasureTopics();
  const groupId = unique('group');
  await job(t, { topics, groupId });
  const user = unique('user');
  const good = { userId: user, requestTimeMs: Date.now(), requestId: 'ok-1' };
  await t.context.producer.send({
    topic: topics.erasure,
    acks: -1,
    messages: [
      { key: user, value: Buffer.from([0xff, 0xff, 0xff]) },
      { key: 'someone-else', value: encodeErasureRequest(good) },
      { key: user, value: encodeErasureRequest({ ...good, requestId: '' }) },
      { key: user, value: encodeErasureRequest({ ...good, requestTimeMs: Date.now() + 7 * 86_400_000 }) },
    ],
  });
  const letters = await readDeadLetters(t.context.kafka, topics.deadLetter, 4);
  // The records are keyed by different users, so they may sit in different partitions: no order.
  t.deepEqual(
    letters.map(({ reason, topic }) => `${reason} from ${topic}`).sort(),
    ['KEY_MISMATCH', 'MISSING_REQUEST_ID', 'REQUEST_TIME_OUT_OF_RANGE', 'UNDECODABLE'].map((reason) => `${reason} from ${topics.erasure}`),
  );
  await drained(t, groupId, topics);
});
