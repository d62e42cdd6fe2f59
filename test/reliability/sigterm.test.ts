import test from 'ava';
import { LONG, sleep } from './harness.js';
import { Scenario } from './scenario.js';

const EVENTS = LONG ? 100_000 : 20_000;

test('SIGTERM mid-batch: exits within the grace period; the next consumer loses and repeats nothing', async (t) => {
  t.timeout(LONG ? 20 * 60_000 : 4 * 60_000);
  const s = await Scenario.start(t, { stream: { events: EVENTS, users: 500, seed: 12, poisonEvery: 500 } });
  await s.produced();
  const args = s.consumerArgs(['--session-timeout-ms', '6000']);

  const first = s.consumer(args);
  t.true(await first.waitStarted(), first.stderr.slice(-1000));
  await sleep(1500); // well into the backlog: a step is in flight
  const signalled = Date.now();
  first.kill('SIGTERM');
  const exit = await first.exited;
  const shutdownMs = Date.now() - signalled;
  t.is(exit.code, 0, first.stderr.slice(-1000));
  t.true(shutdownMs <= 25_000, `shut down in ${shutdownMs} ms`);
  t.regex(first.stderr, /"msg":"stopped"/);

  const second = s.consumer(args);
  const recovery = await s.drained();
  await second.waitStarted();
  second.kill('SIGTERM');
  await second.exited;

  const verdict = await s.verify();
  await s.report({ scenario: `SIGTERM (exit in ${shutdownMs} ms)`, faults: '1 x SIGTERM mid-batch', verdict, recoveryMs: recovery.ms });
  t.is(recovery.lag, 0);
  t.is(verdict.lost, 0);
  t.is(verdict.doubleApplied, 0);
  t.deepEqual(verdict.windowMismatches, []);
  t.deepEqual(verdict.embeddingMismatches, []);
});
