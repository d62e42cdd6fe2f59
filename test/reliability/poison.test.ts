import test from 'ava';
import { DeadLetterHeaders } from '../../consumers/dead-letter.js';
import { consumerGroupLag, ensureTopics } from '../../consumers/kafka.js';
import { KAFKA_BROKERS, REDIS_URL } from '../helpers/environment.js';
import { scenarioContext } from './context.js';
import { ConsumerProcess, consumerArgs, groundTruth, produceStream, readAll, report, sleep, verify, waitForLagZero } from './harness.js';

test('poison input goes to the dead-letter topic with its coordinates; while that topic is unwritable nothing is committed past it', async (t) => {
  t.timeout(4 * 60_000);
  const ctx = await scenarioContext();
  t.teardown(() => ctx.close());
  const { topics } = ctx;
  const sent = await produceStream(ctx.kafka, topics, { events: 3000, users: 100, seed: 17, poisonEvery: 20, partitions: 2 });
  const truth = await groundTruth(ctx.kafka, topics, ctx.bundle);
  t.is(truth.invalid, sent.poison);

  // The dead-letter topic disappears before the consumer starts (the consumer is told not to
  // create it): every poison record's step fails, so the group cannot commit past the first one.
  const admin = ctx.kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topics.deadLetter] });
  const consumer = new ConsumerProcess(consumerArgs(topics, ctx.groupId, ctx.keyPrefix, ['--chunk-size', '100']), {
    TASTE_KAFKA_BROKERS: KAFKA_BROKERS.join(','),
    TASTE_REDIS_URL: REDIS_URL,
    TASTE_CREATE_TOPICS: 'false',
  });
  t.true(await consumer.waitStarted(), consumer.stderr.slice(-2000));
  await sleep(8000);
  const stuckLag = await consumerGroupLag(ctx.kafka, ctx.groupId, [topics.play]);
  t.true(stuckLag > 0, 'offsets past the undeliverable dead letters stay uncommitted');
  t.is(consumer.child.exitCode, null, 'no crash loop: the consumer keeps retrying');

  await admin.disconnect();
  await ensureTopics(ctx.kafka, [{ topic: topics.deadLetter, partitions: 1 }]);
  const recovery = await waitForLagZero(ctx.kafka, ctx.groupId, [topics.play, topics.search], 180_000);
  consumer.kill('SIGTERM');
  await consumer.exited;

  const letters = await readAll(ctx.kafka, [topics.deadLetter]);
  const verdict = await verify(ctx.store, truth.users, ctx.pool);
  report({ scenario: `poison input (${letters.length} dead letters)`, events: sent.records, faults: `${sent.poison} poison records, dead-letter topic deleted then restored`, verdict, regressions: 0, recoveryMs: recovery.ms });
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
