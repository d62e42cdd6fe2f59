import test from 'ava';
import { DeadLetterHeaders } from '../../consumers/dead-letter.js';
import { ensureTopics } from '../../consumers/kafka.js';
import { eventually } from '../helpers/environment.js';
import { POISON_HEADER, readAll, sleep } from './harness.js';
import { Scenario } from './scenario.js';

test('poison input goes to the dead-letter topic with its coordinates; while that topic is unwritable nothing is committed past it', async (t) => {
  t.timeout(4 * 60_000);
  const s = await Scenario.start(t, { stream: { events: 3000, users: 100, seed: 17, poisonEvery: 20, partitions: 2 } });
  const { topics } = s;
  const { sent, truth } = await s.produced();
  t.is(truth.invalid, sent.poison);
  // Where each partition's first poison record is, read from the records themselves.
  const firstPoison = new Map<number, number>();
  for (const record of await readAll(s.kafka, [topics.play])) {
    if (record.headers[POISON_HEADER] !== '1') continue;
    const offset = Number(record.offset);
    if (offset < (firstPoison.get(record.partition) ?? Number.POSITIVE_INFINITY)) firstPoison.set(record.partition, offset);
  }
  t.is(firstPoison.size, 2, 'both partitions hold poison');

  // The dead-letter topic disappears before the consumer starts (the consumer is told not to
  // create it): every poison record's step fails, so the group cannot commit past the first one.
  const admin = s.kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topics.deadLetter] });
  // One record per step: a commit then stops exactly before the record whose step failed.
  const consumer = s.consumer(s.consumerArgs(['--chunk-size', '1']), { TASTE_CREATE_TOPICS: 'false' });
  t.true(await consumer.waitStarted(), consumer.stderr.slice(-2000));
  const committed = async () => {
    const [offsets] = await admin.fetchOffsets({ groupId: s.groupId, topics: [topics.play] });
    return new Map(offsets!.partitions.map(({ partition, offset }) => [partition, Number(offset)]));
  };
  // Kafka reports -1 for a partition with no commit yet, i.e. a poison record at offset 0.
  const expected = [...firstPoison].map(([partition, offset]) => [partition, offset === 0 ? -1 : offset] as const).sort(([a], [b]) => a - b);
  const atPoison = async () => {
    const now = await committed();
    return expected.every(([partition, offset]) => now.get(partition) === offset) ? now : undefined;
  };
  const began = Date.now();
  await eventually(atPoison, 'each partition committed up to its first poison record', 60_000, 200);
  t.log(`stuck at the first poison records after ${Date.now() - began} ms`);
  await sleep(5000);
  t.deepEqual([...(await committed())].sort(([a], [b]) => a - b), expected, 'and not one record past it while the dead letter cannot be written');
  t.is(consumer.child.exitCode, null, 'no crash loop: the consumer keeps retrying');

  await ensureTopics(s.kafka, [{ topic: topics.deadLetter, partitions: 1 }]);
  const recovery = await s.drained(180_000);
  const ends = new Map((await admin.fetchTopicOffsets(topics.play)).map(({ partition, high }) => [partition, Number(high)]));
  const sorted = (offsets: Map<number, number>) => [...offsets].sort(([a], [b]) => a - b);
  t.deepEqual(sorted(await committed()), sorted(ends), 'once it can be written, every partition commits past its poison to the end');
  await admin.disconnect();
  consumer.kill('SIGTERM');
  await consumer.exited;

  const letters = await readAll(s.kafka, [topics.deadLetter]);
  const verdict = await s.verify();
  await s.report({ scenario: `poison input (${letters.length} dead letters)`, faults: `${sent.poison} poison records, dead-letter topic deleted then restored`, verdict, recoveryMs: recovery.ms });
  t.is(recovery.lag, 0);
  // At least once: a step retried after a failed dead-letter write may send a letter twice, so
  // count distinct source coordinates.
  const sources = new Set(
    letters.map((letter) => [DeadLetterHeaders.topic, DeadLetterHeaders.partition, DeadLetterHeaders.offset].map((name) => letter.headers[name]).join(':')),
  );
  t.is(sources.size, sent.poison, 'one dead letter per poison record, with its source coordinates');
  const reasons = new Set(letters.map((letter) => letter.headers[DeadLetterHeaders.reason]));
  t.log('dead-letter reasons:', [...reasons].sort().join(', '));
  for (const reason of ['UNDECODABLE', 'MISSING_USER_ID', 'EVENT_TIME_OUT_OF_RANGE', 'PAYLOAD_TOO_LARGE', 'MISSING_ITEM_URI', 'KEY_MISMATCH']) {
    t.true(reasons.has(reason), `a ${reason} dead letter`);
  }
  t.is(verdict.lost, 0);
  t.is(verdict.doubleApplied, 0);
  t.deepEqual(verdict.windowMismatches, []);
});
