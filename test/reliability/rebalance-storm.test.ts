import test from 'ava';
import { KAFKA_BROKERS, REDIS_URL } from '../helpers/environment.js';
import { scenarioContext } from './context.js';
import {
  assertExactlyOnce,
  ConsumerProcess,
  consumerArgs,
  groundTruth,
  LONG,
  produceStream,
  report,
  simulatedUserIds,
  sleep,
  verify,
  VersionWatcher,
  waitForLagZero,
} from './harness.js';

const STORM_MS = LONG ? 5 * 60_000 : 30_000;

test(`rebalance storm for ${STORM_MS / 1000} s: members join and leave every few seconds, nothing lost or repeated`, async (t) => {
  t.timeout(STORM_MS + 4 * 60_000);
  const ctx = await scenarioContext();
  t.teardown(() => ctx.close());
  const events = LONG ? 100_000 : 12_000;
  const spec = { events, users: 500, seed: 16, poisonEvery: 300, partitions: 6, ratePerSecond: Math.ceil(events / (STORM_MS / 1000)) };
  const production = produceStream(ctx.kafka, ctx.topics, spec);
  const watcher = new VersionWatcher(ctx.store, simulatedUserIds(spec).slice(0, 100));
  watcher.start();
  const env = { TASTE_KAFKA_BROKERS: KAFKA_BROKERS.join(','), TASTE_REDIS_URL: REDIS_URL };
  const args = consumerArgs(ctx.topics, ctx.groupId, ctx.keyPrefix, ['--session-timeout-ms', '6000', '--chunk-size', '200']);
  const members = [new ConsumerProcess(args, env), new ConsumerProcess(args, env)];
  t.teardown(() => members.forEach((member) => member.kill('SIGKILL')));

  let changes = 0;
  const stormEnds = Date.now() + STORM_MS;
  while (Date.now() < stormEnds) {
    await sleep(2000 + Math.random() * 2000);
    // Alternate joins and leaves (mostly graceful, sometimes a crash), keeping 1..3 members.
    if (members.length < 3 && (members.length === 1 || Math.random() < 0.5)) {
      members.push(new ConsumerProcess(args, env));
    } else {
      const leaving = members.splice(Math.floor(Math.random() * members.length), 1)[0]!;
      await leaving.waitStarted();
      leaving.kill(Math.random() < 0.25 ? 'SIGKILL' : 'SIGTERM');
    }
    changes++;
  }

  const sent = await production;
  const truth = await groundTruth(ctx.kafka, ctx.topics, ctx.bundle);
  const recovery = await waitForLagZero(ctx.kafka, ctx.groupId, [ctx.topics.play, ctx.topics.search]);
  for (const member of members) {
    await member.waitStarted();
    member.kill('SIGTERM');
  }
  await Promise.all(members.map((member) => member.exited));
  watcher.stop();

  const verdict = await verify(ctx.store, truth.users, ctx.pool);
  report({ scenario: 'rebalance storm', events: sent.records, faults: `${changes} membership changes`, verdict, regressions: watcher.regressions.length, recoveryMs: recovery.ms });
  t.true(changes >= 5);
  assertExactlyOnce(t, { lag: recovery.lag, verdict, regressions: watcher.regressions });
});
