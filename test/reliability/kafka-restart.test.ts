import test from 'ava';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { REDIS_URL } from '../helpers/environment.js';
import { freePort, LONG, sleep } from './harness.js';
import { Scenario } from './scenario.js';

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

  const s = await Scenario.start(t, { brokers: [`127.0.0.1:${kafkaPort}`], stream: { events: LONG ? 60_000 : 10_000, users: 300, seed: 18, poisonEvery: 300, ratePerSecond: LONG ? 500 : 700 } });
  const watcher = s.watchVersions();
  const consumer = s.consumer();
  t.true(await consumer.waitStarted(), consumer.stderr.slice(-2000));
  await sleep(3000);

  process.kill(brokerPid(), 'SIGKILL'); // a crash, not a clean shutdown
  await sleep(DOWN_MS);
  await services('start');
  const restartedAt = Date.now();

  await s.produced();
  const recovery = await s.drained(180_000);
  t.is(consumer.child.exitCode, null, `the consumer survived the broker restart: ${consumer.stderr.slice(-1500)}`);
  consumer.kill('SIGTERM');
  await consumer.exited;

  const verdict = await s.verify();
  const firstWrite = watcher.firstChangeSince(restartedAt);
  await s.report({ scenario: 'Kafka broker restart', faults: `broker SIGKILL, down ${DOWN_MS / 1000} s`, verdict, recoveryMs: (firstWrite ?? Number.NaN) - restartedAt });
  s.assertExactlyOnce(recovery.lag, verdict);
});
