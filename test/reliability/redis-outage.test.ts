import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, LONG, OwnRedis, rssBytes, sleep } from './harness.js';
import { Scenario } from './scenario.js';

const OUTAGE_MS = LONG ? 30_000 : 8_000;

test(`Redis down for ${OUTAGE_MS / 1000} s: consumers wait without buffering, resume, lose nothing`, async (t) => {
  t.timeout(LONG ? 15 * 60_000 : 4 * 60_000);
  const dir = mkdtempSync(join(tmpdir(), 'taste-redis-outage-'));
  const redis = new OwnRedis(await freePort(), dir);
  await redis.start();
  t.teardown(async () => {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const s = await Scenario.start(t, { redisUrl: redis.url, stream: { events: LONG ? 50_000 : 12_000, users: 400, seed: 13, poisonEvery: 400, ratePerSecond: LONG ? 800 : 600 } });
  const watcher = s.watchVersions();
  const consumer = s.consumer();
  t.true(await consumer.waitStarted(), consumer.stderr.slice(-1000));
  await sleep(3000);

  const rssBefore = rssBytes(consumer.child.pid!);
  await redis.stop();
  let rssPeak = rssBefore;
  const outageEnds = Date.now() + OUTAGE_MS;
  while (Date.now() < outageEnds) {
    rssPeak = Math.max(rssPeak, rssBytes(consumer.child.pid!));
    await sleep(250);
  }
  t.is(consumer.child.exitCode, null, 'the consumer rides out the outage');
  t.regex(consumer.stderr, /apply failed; retrying/);
  await redis.start();
  const restartedAt = Date.now();

  await s.produced();
  const recovery = await s.drained();
  consumer.kill('SIGTERM');
  await consumer.exited;

  const verdict = await s.verify();
  const firstWrite = watcher.firstChangeSince(restartedAt);
  const growthMb = (rssPeak - rssBefore) / 2 ** 20;
  await s.report({ scenario: `Redis outage (RSS +${growthMb.toFixed(1)} MB)`, faults: `Redis down ${OUTAGE_MS / 1000} s`, verdict, recoveryMs: (firstWrite ?? Number.NaN) - restartedAt });
  t.not(firstWrite, undefined, 'writes resume after Redis is back');
  t.true(growthMb < 100, `consumer memory grew by ${growthMb.toFixed(1)} MB during the outage`);
  s.assertExactlyOnce(recovery.lag, verdict);
});
