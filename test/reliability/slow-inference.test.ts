import test from 'ava';
import type { Embedder } from '../../updater/updater.js';
import { startTestJob } from '../helpers/pipeline.js';
import { LONG, sleep } from './harness.js';
import { Scenario } from './scenario.js';

const DELAY_MS = LONG ? 20_000 : 9_000;

test(`inference slower than the session timeout (${DELAY_MS / 1000} s > 6 s): heartbeats go on, no rebalance, no loss`, async (t) => {
  t.timeout(LONG ? 15 * 60_000 : 3 * 60_000);
  const s = await Scenario.start(t, { stream: { events: 2000, users: 100, seed: 14 } });
  await s.produced();

  let slowCalls = 0;
  // The real model, made slow for its first calls: a stand-in for a cold GPU or an overloaded node.
  const slow = (embedder: Embedder): Embedder => ({
    embed: async (windows) => {
      if (slowCalls++ < 2) await sleep(DELAY_MS);
      return embedder.embed(windows);
    },
  });
  const job = await startTestJob({
    topics: s.topics,
    groupId: s.groupId,
    keyPrefix: s.keyPrefix,
    sessionTimeoutMs: 6000,
    partitionsConsumedConcurrently: 1,
    decorateEmbedder: slow,
  });
  t.teardown(() => job.stop());
  const recovery = await s.drained(3 * DELAY_MS + 60_000);
  const joins = job.consumer.stats.groupJoins;
  await job.stop();

  const verdict = await s.verify();
  await s.report({ scenario: `slow inference (group joins ${joins})`, faults: `2 inferences of ${DELAY_MS / 1000} s`, verdict, recoveryMs: recovery.ms });
  t.true(slowCalls > 2);
  t.is(joins, 1, 'no rebalance: the member stayed alive through the slow steps');
  t.is(recovery.lag, 0);
  t.is(verdict.lost, 0);
  t.is(verdict.doubleApplied, 0);
  t.deepEqual(verdict.windowMismatches, []);
});
