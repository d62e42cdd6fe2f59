import anyTest, { type TestFn } from 'ava';
import { ensureTopics } from '../../consumers/kafka.js';
import { eventually, unique } from '../helpers/environment.js';
import { play, readDeadLetters, search, sendPlays, sendSearches, type StreamJobContext, uniqueTopics, withStreamJobs } from '../helpers/pipeline.js';

const test = anyTest as TestFn<StreamJobContext>;
const job = withStreamJobs(test);
const now = () => Date.now();

test('plays and searches become one embedding per user with the window they imply', async (t) => {
  const topics = uniqueTopics();
  const stream = await job(t, { topics });
  const user = unique('user');
  const start = now() - 60_000;
  await sendPlays(t.context.producer, topics.play, [
    play(user, 'taste:track:1', start),
    play(user, 'taste:track:2', start + 1000, { msPlayed: 5000, endReason: 'END_REASON_SKIPPED_FORWARD' }),
  ]);
  await sendSearches(t.context.producer, topics.search, [search(user, 'Daft Punk', start + 2000, 'taste:track:3')]);

  const [embedding] = await eventually(async () => {
    const found = await stream.store.readEmbeddings([user]);
    return found[0]?.eventsInWindow === 3 ? found : undefined;
  }, 'three events applied');
  t.is(embedding!.vector.length, stream.bundle.metadata.embeddingDim);
  t.is(embedding!.lastEventMs, start + 2000);
  const norm = Math.hypot(...embedding!.vector);
  t.true(Math.abs(norm - 1) < 1e-4, `embedding is L2-normalised (norm ${norm})`);

  const [state] = [...(await stream.store.loadStates([user])).values()];
  t.deepEqual(state!.window.map((event) => event.kind), [2, 3, 4]);
});

test('a redelivered event is applied once', async (t) => {
  const topics = uniqueTopics();
  const groupId = unique('group');
  const keyPrefix = unique('test');
  const user = unique('user');
  const first = await job(t, { topics, groupId, keyPrefix });
  await sendPlays(t.context.producer, topics.play, [play(user, 'taste:track:5', now() - 5000), play(user, 'taste:track:6', now() - 4000)]);
  await eventually(async () => ((await first.store.readEmbeddings([user]))[0]?.eventsInWindow === 2 ? true : undefined), 'first pass');
  const before = (await first.store.loadStates([user])).get(user)!;
  await first.stop();
  t.context.jobs.splice(t.context.jobs.indexOf(first), 1);

  // Rewind the group to the beginning: every record is delivered again, as after a crash
  // between the Redis write and the offset commit.
  const admin = t.context.kafka.admin();
  await admin.connect();
  await admin.resetOffsets({ groupId, topic: topics.play, earliest: true });
  await admin.disconnect();

  const second = await job(t, { topics, groupId, keyPrefix });
  await eventually(async () => (second.consumer.stats.duplicates >= 2 ? true : undefined), 'the redelivered records');
  const after = (await second.store.loadStates([user])).get(user)!;
  t.is(after.version, before.version, 'no new write for events already applied');
  t.deepEqual(after.window, before.window);
  t.is(second.consumer.stats.applied, 0);
});

test('two consumers in one group split the partitions and both make progress', async (t) => {
  const topics = uniqueTopics();
  const groupId = unique('group');
  const keyPrefix = unique('test');
  await ensureTopics(t.context.kafka, [
    { topic: topics.play, partitions: 4 },
    { topic: topics.search, partitions: 4 },
    { topic: topics.deadLetter, partitions: 1 },
  ]);
  const a = await job(t, { topics, groupId, keyPrefix });
  const b = await job(t, { topics, groupId, keyPrefix });
  await Promise.all([a.consumer.joined, b.consumer.joined]);
  const users = Array.from({ length: 40 }, () => unique('user'));
  await sendPlays(t.context.producer, topics.play, users.map((user, index) => play(user, `taste:track:${index + 2}`, now() - 1000)));

  await eventually(async () => {
    const found = await a.store.readEmbeddings(users);
    return found.every((embedding) => embedding?.eventsInWindow === 1) ? true : undefined;
  }, 'every user embedded');
  t.true(a.consumer.stats.messages > 0, `consumer A processed ${a.consumer.stats.messages}`);
  t.true(b.consumer.stats.messages > 0, `consumer B processed ${b.consumer.stats.messages}`);
  t.is(a.consumer.stats.messages + b.consumer.stats.messages, users.length);
});

test('a malformed message goes to the dead-letter topic and its partition keeps flowing', async (t) => {
  const topics = uniqueTopics();
  await ensureTopics(t.context.kafka, [
    { topic: topics.play, partitions: 1 },
    { topic: topics.search, partitions: 1 },
    { topic: topics.deadLetter, partitions: 1 },
  ]);
  const stream = await job(t, { topics });
  const user = unique('user');
  await t.context.producer.send({ topic: topics.play, messages: [{ key: user, value: Buffer.from([0xff, 0xff, 0xff, 0x01]) }] });
  await sendPlays(t.context.producer, topics.play, [
    play(user, 'taste:track:9', now() - 1000),
    play('', 'taste:track:9', now() - 1000),
  ]);

  await eventually(async () => ((await stream.store.readEmbeddings([user]))[0]?.eventsInWindow === 1 ? true : undefined), 'the valid event');

  const letters = await readDeadLetters(t.context.kafka, topics.deadLetter, 2);
  t.deepEqual(
    letters.map((letter) => [letter.reason, letter.offset, letter.topic]),
    [
      ['UNDECODABLE', '0', topics.play],
      ['MISSING_USER_ID', '2', topics.play],
    ],
  );
});
