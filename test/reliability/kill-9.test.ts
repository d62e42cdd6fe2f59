import test from 'ava';
import { KILL_SEED, killMoments, LONG } from './harness.js';
import { Scenario } from './scenario.js';

const EVENTS = LONG ? 100_000 : 15_000;
const CYCLES = LONG ? 20 : 5;

test('the kill moments come from the seed alone, so a failing run can be replayed', (t) => {
  t.deepEqual(killMoments(12345, 5), killMoments(12345, 5));
  t.notDeepEqual(killMoments(12345, 5), killMoments(54321, 5));
  for (const moment of killMoments(KILL_SEED, 50)) t.true(moment >= 200 && moment < 1700);
});

test(`kill -9 of a consumer ${CYCLES} times: nothing lost, nothing applied twice`, async (t) => {
  t.timeout(LONG ? 30 * 60_000 : 4 * 60_000);
  const s = await Scenario.start(t, { stream: { events: EVENTS, users: LONG ? 3000 : 300, seed: 11, poisonEvery: 250, ratePerSecond: Math.ceil(EVENTS / (CYCLES * 6)) } });
  const watcher = s.watchVersions();
  const args = s.consumerArgs(['--session-timeout-ms', '6000', '--chunk-size', '200']);
  t.log(`kill moments: seed ${KILL_SEED} (replay with TASTE_KILL_SEED=${KILL_SEED})`);
  const { sent, truth, lag, recoveryMs, last, exit } = await s.killEachThenDrain(args, killMoments(KILL_SEED, CYCLES));
  t.is(truth.valid + truth.invalid, sent.records);

  const verdict = await s.verify();
  await s.report({ scenario: 'kill -9', faults: `${CYCLES} x SIGKILL`, verdict, recoveryMs });
  t.is(exit.code, 0, last.stderr.slice(-1000));
  t.is(lag, 0, 'consumer group lag');
  if (verdict.lost > 0 || verdict.doubleApplied > 0) t.log(`failed with kill seed ${KILL_SEED}: TASTE_KILL_SEED=${KILL_SEED} replays these kill moments`);
  t.is(verdict.lost, 0);
  t.is(verdict.doubleApplied, 0);
  t.is(verdict.appliedEvents, truth.valid);
  t.deepEqual(watcher.regressions, []);
  t.true(watcher.polls > 0);
  t.deepEqual(verdict.windowMismatches, []);
  t.deepEqual(verdict.embeddingMismatches, []);
});
