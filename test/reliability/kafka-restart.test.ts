import test from 'ava';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { REDIS_URL } from '../helpers/environment.js';
import { scenarioContext } from './context.js';
import {
  assertExactlyOnce,
  ConsumerProcess,
  consumerArgs,
  freePort,
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

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const DOWN_MS = LONG ? 30_000 : 6_000;

test(`Kafka broker restarted (down ${DOWN_MS / 1000} s) during production and consumption: nothing lost or repeated`, async (t) => {
  t.timeout(LONG ? 20 * 60_000 : 5 * 60_000);
  // A broker of this scenario's own, so restarting it disturbs no other test.
  const kafkaPort = await freePort();
  const controllerPort = await freePort();
  const servicesDir = join(REPO, '.taste', `services-kafka-restart-${kafkaPort}`);
  const redisPort = new URL(REDIS_URL).port;
  const services = (command: string) =>
    run('bash', [join(REPO, 'deploy/local/services.sh'), command], {
      env: { ...process.env, TASTE_KAFKA_PORT: String(kafkaPort), TASTE_KAFKA_CONTROLLER_PORT: String(controllerPort), TASTE_REDIS_PORT: redisPort, TASTE_SERVICES_DIR: servicesDir },
      timeout: 180_000,
    });
  await services('start');
  const brokerPid = () => Number(readFileSync(join(servicesDir, 'kafka', 'kafka.pid'), 'utf8').trim());
  t.teardown(async () => {
    try {
      process.kill(brokerPid(), 'SIGKILL');
    } catch {
      // already gone
    }
    await run('rm', ['-rf', servicesDir]);
  });

  const brokers = [`127.0.0.1:${kafkaPort}`];
  const ctx = await scenarioContext(REDIS_URL, brokers);
  t.teardown(() => ctx.close());
  const spec = { events: LONG ? 60_000 : 10_000, users: 300, seed: 18, poisonEvery: 300, ratePerSecond: LONG ? 500 : 700 };
  const production = produceStream(ctx.kafka, ctx.topics, spec);
  const watcher = new VersionWatcher(ctx.store, simulatedUserIds(spec).slice(0, 100));
  watcher.start();
  const consumer = new ConsumerProcess(consumerArgs(ctx.topics, ctx.groupId, ctx.keyPrefix), {
    TASTE_KAFKA_BROKERS: brokers.join(','),
    TASTE_REDIS_URL: REDIS_URL,
  });
  t.teardown(() => consumer.kill('SIGKILL'));
  t.true(await consumer.waitStarted(), consumer.stderr.slice(-2000));
  await sleep(3000);

  process.kill(brokerPid(), 'SIGKILL'); // a crash, not a clean shutdown
  await sleep(DOWN_MS);
  await services('start');
  const restartedAt = Date.now();

  const sent = await production;
  const truth = await groundTruth(ctx.kafka, ctx.topics, ctx.bundle);
  const recovery = await waitForLagZero(ctx.kafka, ctx.groupId, [ctx.topics.play, ctx.topics.search], 180_000);
  t.is(consumer.child.exitCode, null, `the consumer survived the broker restart: ${consumer.stderr.slice(-1500)}`);
  consumer.kill('SIGTERM');
  await consumer.exited;
  watcher.stop();

  const verdict = await verify(ctx.store, truth.users, ctx.pool);
  const firstWrite = watcher.firstChangeSince(restartedAt);
  report({ scenario: 'Kafka broker restart', events: sent.records, faults: `broker SIGKILL, down ${DOWN_MS / 1000} s`, verdict, regressions: watcher.regressions.length, recoveryMs: (firstWrite ?? Number.NaN) - restartedAt });
  assertExactlyOnce(t, { lag: recovery.lag, verdict, regressions: watcher.regressions });
});
