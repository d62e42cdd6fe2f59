import test from 'ava';
import { KAFKA_BROKERS, REDIS_URL } from '../helpers/environment.js';
import { scenarioContext } from './context.js';
import { ConsumerProcess, consumerArgs, groundTruth, LONG, produceStream, report, sleep, verify, waitForLagZero } from './harness.js';

const EVENTS = LONG ? 100_000 : 20_000;

test('SIGTERM mid-batch: exits within the grace period; the next consumer loses and repeats nothing', async (t) => {
  t.timeout(LONG ? 20 * 60_000 : 4 * 60_000);
  const ctx = await scenarioContext();
  t.teardown(() => ctx.close());
  const sent = await produceStream(ctx.kafka, ctx.topics, { events: EVENTS, users: 500, seed: 12, poisonEvery: 500 });
  const truth = await groundTruth(ctx.kafka, ctx.topics, ctx.bundle);
  const env = { TASTE_KAFKA_BROKERS: KAFKA_BROKERS.join(','), TASTE_REDIS_URL: REDIS_URL };
  const args = consumerArgs(ctx.topics, ctx.groupId, ctx.keyPrefix, ['--session-timeout-ms', '6000']);

  const first = new ConsumerProcess(args, env);
  t.true(await first.waitStarted(), first.stderr.slice(-1000));
  await sleep(1500); // well into the backlog: a step is in flight
  const signalled = Date.now();
  first.kill('SIGTERM');
  const exit = await first.exited;
  const shutdownMs = Date.now() - signalled;
  t.is(exit.code, 0, first.stderr.slice(-1000));
  t.true(shutdownMs <= 25_000, `shut down in ${shutdownMs} ms`);
  t.regex(first.stderr, /"msg":"stopped"/);

  const second = new ConsumerProcess(args, env);
  const recovery = await waitForLagZero(ctx.kafka, ctx.groupId, [ctx.topics.play, ctx.topics.search]);
  await second.waitStarted();
  second.kill('SIGTERM');
  await second.exited;

  const verdict = await verify(ctx.store, truth.users, ctx.pool);
  report({ scenario: `SIGTERM (exit in ${shutdownMs} ms)`, events: sent.records, faults: '1 x SIGTERM mid-batch', verdict, regressions: 0, recoveryMs: recovery.ms });
  t.is(recovery.lag, 0);
  t.is(verdict.lost, 0);
  t.is(verdict.doubleApplied, 0);
  t.deepEqual(verdict.windowMismatches, []);
  t.deepEqual(verdict.embeddingMismatches, []);
});
