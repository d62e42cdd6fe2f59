import test from 'ava';
import { randomInt } from 'node:crypto';
import { Random } from '../../simulator/random.js';
import { LONG, sleep } from './harness.js';
import { Scenario } from './scenario.js';

const EVENTS = LONG ? 100_000 : 15_000;
const CYCLES = LONG ? 20 : 5;
/** The kill moments' seed: logged every run; TASTE_KILL_SEED=<seed> replays a failure's moments. */
const KILL_SEED = process.env.TASTE_KILL_SEED === undefined ? randomInt(2 ** 31) : Number(process.env.TASTE_KILL_SEED);

/** Milliseconds after each start at which that consumer is killed: 200-1700, from the seed alone. */
function killMoments(seed: number, cycles: number): number[] {
  const random = new Random(seed);
  return Array.from({ length: cycles }, () => 200 + Math.floor(random.float() * 1500));
}

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
  const moments = killMoments(KILL_SEED, CYCLES);
  for (const moment of moments) {
    const consumer = s.consumer(args);
    await consumer.waitStarted();
    // Kill at a random moment of its work: mid-step, between the Redis write and the commit, or idle.
    await sleep(moment);
    consumer.kill('SIGKILL');
    await consumer.exited;
  }

  const { sent, truth } = await s.produced();
  t.is(truth.valid + truth.invalid, sent.records);

  const last = s.consumer(args);
  const { lag, ms: recoveryMs } = await s.drained();
  await last.waitStarted();
  last.kill('SIGTERM');
  const exit = await last.exited;

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
