import anyTest, { type TestFn } from 'ava';
import { encodeWindow } from '../../featurestore/codec.js';
import { StateFields } from '../../featurestore/keys.js';
import type { StreamJob } from '../../consumers/stream-job.js';
import { EventKinds, Streams } from '../../events/window-event.js';
import { eventually, unique } from '../helpers/environment.js';
import { play, readDeadLetters, sendPlays, type StreamJobContext, singlePartitionTopics, withStreamJobs } from '../helpers/pipeline.js';

const test = anyTest as TestFn<StreamJobContext>;
const job = withStreamJobs(test);

/**
 * Leaves a stored window whose item id is past the model's item table, as a foreign writer might:
 * the codec reads it, and ONNX Runtime refuses the whole run it is in (Gather out of bounds), a
 * failure retrying cannot fix.
 */
async function poison(stream: StreamJob, userId: string): Promise<void> {
  const badItem = stream.bundle.metadata.numItems + 1000;
  const window = [{ eventTimeMs: Date.now() - 120_000, stream: Streams.PLAY, partition: 0, offset: 0, itemId: badItem, kind: EventKinds.PLAY, queryTokens: [] }];
  await stream.redis.hset(stream.store.key(userId), StateFields.window, encodeWindow(window, stream.store.queryTokens));
}

test('a user whose inference fails for good is dead-lettered with the reason; the other users of the step land and the partition moves on', async (t) => {
  const topics = await singlePartitionTopics(t);
  const stream = await job(t, { topics });
  const [poisoned, ...healthy] = [unique('poisoned'), unique('user'), unique('user')];
  const users = [poisoned!, ...healthy];
  const at = Date.now() - 60_000;
  await sendPlays(t.context.producer, topics.play, users.map((user) => play(user, 'taste:track:3', at)));
  await eventually(async () => ((await stream.store.readEmbeddings(users)).every((found) => found?.eventsInWindow === 1) ? true : undefined), 'first events');
  await poison(stream, poisoned!);

  await sendPlays(t.context.producer, topics.play, users.map((user) => play(user, 'taste:track:4', at + 1000)));
  await eventually(async () => (stream.consumer.stats.messages === 6 ? true : undefined), 'every record through its step', 30_000);
  const found = await stream.store.readEmbeddings(healthy);
  t.deepEqual(found.map((embedding) => embedding?.eventsInWindow), [2, 2]);

  const letters = await readDeadLetters(t.context.kafka, topics.deadLetter, 1);
  t.deepEqual(letters.map((letter) => [letter.reason, letter.key, letter.offset]), [['UPDATE_FAILED', poisoned, '3']]);
  t.regex(letters[0]!.detail, /TASTE_INFERENCE_FAILED: .*Gather/);
  const state = (await stream.store.loadStates([poisoned!])).get(poisoned!)!;
  t.is(state.appliedTotal, 1, 'the refused event was not applied');
});

test('a refused user\'s redelivered duplicates are not dead-lettered again: only the events never applied are', async (t) => {
  const topics = await singlePartitionTopics(t);
  const groupId = unique('group');
  const keyPrefix = unique('test');
  const user = unique('user');
  const at = Date.now() - 60_000;
  const first = await job(t, { topics, groupId, keyPrefix });
  await sendPlays(t.context.producer, topics.play, [play(user, 'taste:track:3', at), play(user, 'taste:track:4', at + 1000)]);
  await eventually(async () => ((await first.store.readEmbeddings([user]))[0]?.eventsInWindow === 2 ? true : undefined), 'offsets 0 and 1 applied');
  await poison(first, user);
  await first.stop();
  t.context.jobs.splice(t.context.jobs.indexOf(first), 1);

  // Offset 2 is new; the rewind redelivers 0 and 1, which the user's offsets mark as applied.
  await sendPlays(t.context.producer, topics.play, [play(user, 'taste:track:5', at + 2000)]);
  const admin = t.context.kafka.admin();
  await admin.connect();
  await admin.resetOffsets({ groupId, topic: topics.play, earliest: true });
  await admin.disconnect();
  const second = await job(t, { topics, groupId, keyPrefix });
  await eventually(async () => (second.consumer.stats.messages === 3 ? true : undefined), 'the three records through their step', 30_000);

  const letters = await readDeadLetters(t.context.kafka, topics.deadLetter, 1);
  // Anything more would have arrived with the one record: they are sent in one call.
  t.deepEqual(letters.map((letter) => [letter.reason, letter.offset]), [['UPDATE_FAILED', '2']]);
  t.is(second.consumer.stats.duplicates, 2);
});
