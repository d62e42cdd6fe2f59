import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KAFKA_BROKERS } from '../helpers/environment.js';
import { scenarioContext } from './context.js';
import {
  assertExactlyOnce,
  ConsumerProcess,
  consumerArgs,
  freePort,
  groundTruth,
  LONG,
  OwnRedis,
  produceStream,
  report,
  rssBytes,
  simulatedUserIds,
  sleep,
  verify,
  VersionWatcher,
  waitForLagZero,
} from './harness.js';

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
  const ctx = await scenarioContext(redis.url);
  t.teardown(() => ctx.close());
  const spec = { events: LONG ? 50_000 : 12_000, users: 400, seed: 13, poisonEvery: 400, ratePerSecond: LONG ? 800 : 600 };
  const production = produceStream(ctx.kafka, ctx.topics, spec);
  const watcher = new VersionWatcher(ctx.store, simulatedUserIds(spec).slice(0, 100));
  watcher.start();
  const consumer = new ConsumerProcess(consumerArgs(ctx.topics, ctx.groupId, ctx.keyPrefix), {
    TASTE_KAFKA_BROKERS: KAFKA_BROKERS.join(','),
    TASTE_REDIS_URL: redis.url,
  });
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

  const sent = await production;
  const truth = await groundTruth(ctx.kafka, ctx.topics, ctx.bundle);
  const recovery = await waitForLagZero(ctx.kafka, ctx.groupId, [ctx.topics.play, ctx.topics.search]);
  consumer.kill('SIGTERM');
  await consumer.exited;
  watcher.stop();

  const verdict = await verify(ctx.store, truth.users, ctx.pool);
  const firstWrite = watcher.firstChangeSince(restartedAt);
  const growthMb = (rssPeak - rssBefore) / 2 ** 20;
  report({ scenario: `Redis outage (RSS +${growthMb.toFixed(1)} MB)`, events: sent.records, faults: `Redis down ${OUTAGE_MS / 1000} s`, verdict, regressions: watcher.regressions.length, recoveryMs: (firstWrite ?? Number.NaN) - restartedAt });
  t.not(firstWrite, undefined, 'writes resume after Redis is back');
  t.true(growthMb < 100, `consumer memory grew by ${growthMb.toFixed(1)} MB during the outage`);
  assertExactlyOnce(t, { lag: recovery.lag, verdict, regressions: watcher.regressions });
});
