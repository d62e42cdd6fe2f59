import anyTest, { type TestFn } from 'ava';
import { TasteError } from '../../common/errors.js';
import type { RedisClient } from '../../featurestore/feature-store.js';
import { addQualitySamples, qualityKey, qualityRates, readQualityTotals } from '../../featurestore/live-quality.js';
import { createRedisClient, waitForRedis } from '../../featurestore/redis-client.js';
import { unique } from '../helpers/environment.js';
import { storeTarget } from '../helpers/redis-target.js';

interface Context {
  redis: RedisClient;
}
const test = anyTest as TestFn<Context>;
const target = storeTarget();
const HOUR = 3_600_000;
// 10:30 on some day: its bucket starts at 10:00.
const NOW = Math.floor(1_800_000_000_000 / HOUR) * HOUR + 30 * 60_000;

test.before(async (t) => {
  const redis = createRedisClient({ url: target.url, cluster: target.cluster });
  await waitForRedis(redis);
  t.context = { redis };
});

test.after.always((t) => {
  t.context.redis?.disconnect();
});

test(`${target.name}: batches add up per hour bucket, and a read sums the last hours per version`, async (t) => {
  const { redis } = t.context;
  const prefix = unique('quality');
  await addQualitySamples(redis, prefix, 'v1', { samples: 10, hits10: 4, ndcg10Sum: 2.5, reciprocalRankSum: 1.25 }, NOW);
  await addQualitySamples(redis, prefix, 'v1', { samples: 5, hits10: 1, ndcg10Sum: 0.5, reciprocalRankSum: 0.25 }, NOW + 10 * 60_000);
  await addQualitySamples(redis, prefix, 'v1', { samples: 20, hits10: 10, ndcg10Sum: 5, reciprocalRankSum: 4 }, NOW - 23 * HOUR); // 23 h before: inside 24 h
  await addQualitySamples(redis, prefix, 'v1', { samples: 100, hits10: 100, ndcg10Sum: 100, reciprocalRankSum: 100 }, NOW - 24 * HOUR); // the 25th bucket back: outside
  await addQualitySamples(redis, prefix, 'v2', { samples: 8, hits10: 2, ndcg10Sum: 1, reciprocalRankSum: 0.5 }, NOW - HOUR);

  const totals = await readQualityTotals(redis, prefix, ['v1', 'v2', 'v3'], NOW, 24);
  t.deepEqual(totals.get('v1'), { samples: 35, hits10: 15, ndcg10Sum: 8, reciprocalRankSum: 5.5 });
  t.deepEqual(totals.get('v2'), { samples: 8, hits10: 2, ndcg10Sum: 1, reciprocalRankSum: 0.5 });
  t.deepEqual(totals.get('v3'), { samples: 0, hits10: 0, ndcg10Sum: 0, reciprocalRankSum: 0 });
  t.deepEqual((await readQualityTotals(redis, prefix, ['v1'], NOW, 1)).get('v1'), { samples: 15, hits10: 5, ndcg10Sum: 3, reciprocalRankSum: 1.5 });
  t.deepEqual(qualityRates(totals.get('v2')!), { hitRate10: 0.25, ndcg10: 0.125, mrr: 0.0625 });
  t.is(qualityRates(totals.get('v3')!), undefined);

  // The bucket of NOW starts on the hour and lives 8 days.
  const key = qualityKey(prefix, 'v1', NOW - 30 * 60_000);
  t.deepEqual(await redis.hgetall(key), { samples: '15', hits10: '5', ndcg10: '3', rr: '1.5' });
  const ttl = await redis.pttl(key);
  t.true(ttl > 8 * 24 * HOUR - 60_000 && ttl <= 8 * 24 * HOUR, `ttl ${ttl}`);
});

test('totals that cannot be right are refused before anything is written', async (t) => {
  const { redis } = t.context;
  const prefix = unique('quality-bad');
  await t.throwsAsync(addQualitySamples(redis, prefix, 'v1', { samples: 2, hits10: 3, ndcg10Sum: 0, reciprocalRankSum: 0 }, NOW), { instanceOf: TasteError, message: /hits10/ });
  await t.throwsAsync(addQualitySamples(redis, prefix, 'v1', { samples: 2, hits10: 1, ndcg10Sum: Number.NaN, reciprocalRankSum: 0 }, NOW), { instanceOf: TasteError, message: /ndcg10Sum/ });
  await t.throwsAsync(addQualitySamples(redis, prefix, 'bad version', { samples: 1, hits10: 1, ndcg10Sum: 1, reciprocalRankSum: 1 }, NOW), { instanceOf: TasteError, message: /not valid/ });
  await t.throwsAsync(readQualityTotals(redis, prefix, ['v1'], NOW, 0), { instanceOf: TasteError, message: /hours/ });
  t.is((await readQualityTotals(redis, prefix, ['v1'], NOW, 24)).get('v1')?.samples, 0);
});
