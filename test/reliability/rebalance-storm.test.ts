import test from 'ava';
import { LONG, sleep } from './harness.js';
import { Scenario } from './scenario.js';

const STORM_MS = LONG ? 5 * 60_000 : 30_000;

test(`rebalance storm for ${STORM_MS / 1000} s: members join and leave every few seconds, nothing lost or repeated`, async (t) => {
  t.timeout(STORM_MS + 4 * 60_000);
  const events = LONG ? 100_000 : 12_000;
  const s = await Scenario.start(t, { stream: { events, users: 500, seed: 16, poisonEvery: 300, partitions: 6, ratePerSecond: Math.ceil(events / (STORM_MS / 1000)) } });
  s.watchVersions();
  const args = s.consumerArgs(['--session-timeout-ms', '6000', '--chunk-size', '200']);
  const members = [s.consumer(args), s.consumer(args)];

  let changes = 0;
  const stormEnds = Date.now() + STORM_MS;
  while (Date.now() < stormEnds) {
    await sleep(2000 + Math.random() * 2000);
    // Alternate joins and leaves (mostly graceful, sometimes a crash), keeping 1..3 members.
    if (members.length < 3 && (members.length === 1 || Math.random() < 0.5)) {
      members.push(s.consumer(args));
    } else {
      const leaving = members.splice(Math.floor(Math.random() * members.length), 1)[0]!;
      await leaving.waitStarted();
      leaving.kill(Math.random() < 0.25 ? 'SIGKILL' : 'SIGTERM');
    }
    changes++;
  }

  await s.produced();
  const recovery = await s.drained();
  for (const member of members) {
    await member.waitStarted();
    member.kill('SIGTERM');
  }
  await Promise.all(members.map((member) => member.exited));

  const verdict = await s.verify();
  await s.report({ scenario: 'rebalance storm', faults: `${changes} membership changes`, verdict, recoveryMs: recovery.ms });
  t.true(changes >= 5);
  s.assertExactlyOnce(recovery.lag, verdict);
});
