import test from 'ava';
import type { Embedder } from '../../updater/updater.js';
import { startTestJob } from '../helpers/pipeline.js';
import { scenarioContext } from './context.js';
import { groundTruth, LONG, produceStream, report, sleep, verify, waitForLagZero } from './harness.js';

const DELAY_MS = LONG ? 20_000 : 9_000;

test(`inference slower than the session timeout (${DELAY_MS / 1000} s > 6 s): heartbeats go on, no rebalance, no loss`, async (t) => {
  t.timeout(LONG ? 15 * 60_000 : 3 * 60_000);
  const ctx = await scenarioContext();
  t.teardown(() => ctx.close());
  const sent = await produceStream(ctx.kafka, ctx.topics, { events: 2000, users: 100, seed: 14 });
  const truth = await groundTruth(ctx.kafka, ctx.topics, ctx.bundle);

  let slowCalls = 0;
  // The real model, made slow for its first calls: a stand-in for a cold GPU or an overloaded node.
  const slow = (embedder: Embedder): Embedder => ({
    embed: async (windows) => {
      if (slowCalls++ < 2) await sleep(DELAY_MS);
      return embedder.embed(windows);
    },
  });
  const job = await startTestJob({
    topics: ctx.topics,
    groupId: ctx.groupId,
    keyPrefix: ctx.keyPrefix,
    sessionTimeoutMs: 6000,
    partitionsConsumedConcurrently: 1,
    decorateEmbedder: slow,
  });
  t.teardown(() => job.stop());
  const recovery = await waitForLagZero(ctx.kafka, ctx.groupId, [ctx.topics.play, ctx.topics.search], 3 * DELAY_MS + 60_000);
  const joins = job.consumer.stats.groupJoins;
  await job.stop();

  const verdict = await verify(ctx.store, truth.users, ctx.pool);
  report({ scenario: `slow inference (group joins ${joins})`, events: sent.records, faults: `2 inferences of ${DELAY_MS / 1000} s`, verdict, regressions: 0, recoveryMs: recovery.ms });
  t.true(slowCalls > 2);
  t.is(joins, 1, 'no rebalance: the member stayed alive through the slow steps');
  t.is(recovery.lag, 0);
  t.is(verdict.lost, 0);
  t.is(verdict.doubleApplied, 0);
  t.deepEqual(verdict.windowMismatches, []);
});
