import { ErrorCodes, TasteError } from '../common/errors.js';
import type { RedisClient } from './feature-store.js';
import { ROLLOUT_VERSION_PATTERN } from './rollout-state.js';

/**
 * Live quality per model version, in hour buckets (docs/rollout.md). Whoever measures it (the
 * stream job scoring each new play against the embedding it had before) adds totals here;
 * `taste rollout status` sums the recent buckets. Sums, not averages, so buckets and writers add up.
 *
 *   <prefix>:quality:<modelVersion>:<hour start ms>  →  hash
 *     samples  plays scored                    hits10  of them in the top 10
 *     ndcg10   sum of NDCG@10                  rr      sum of reciprocal ranks
 */
export interface QualityTotals {
  samples: number;
  hits10: number;
  ndcg10Sum: number;
  reciprocalRankSum: number;
}

export const HOUR_MS = 3_600_000;
/** Buckets outlive the longest window `status` reads (a week) by a day. */
export const QUALITY_TTL_MS = 8 * 24 * HOUR_MS;

const Fields = { samples: 'samples', hits10: 'hits10', ndcg10Sum: 'ndcg10', reciprocalRankSum: 'rr' } as const;

export function hourStartMs(nowMs: number): number {
  return Math.floor(nowMs / HOUR_MS) * HOUR_MS;
}

export function qualityKey(prefix: string, modelVersion: string, hourStart: number): string {
  return `${prefix}:quality:${modelVersion}:${hourStart}`;
}

export function emptyTotals(): QualityTotals {
  return { samples: 0, hits10: 0, ndcg10Sum: 0, reciprocalRankSum: 0 };
}

/** Adds one batch of samples of a model version into the hour bucket of nowMs (HINCRBY / HINCRBYFLOAT, with a TTL of 8 days). */
export async function addQualitySamples(redis: RedisClient, prefix: string, modelVersion: string, totals: QualityTotals, nowMs: number): Promise<void> {
  checkVersion(modelVersion);
  const { samples, hits10, ndcg10Sum, reciprocalRankSum } = totals;
  if (!Number.isSafeInteger(samples) || samples < 0 || !Number.isSafeInteger(hits10) || hits10 < 0 || hits10 > samples) {
    throw new TasteError(ErrorCodes.CONFIG_INVALID, `quality totals: samples and hits10 must be whole numbers with 0 <= hits10 <= samples, got ${samples} and ${hits10}`);
  }
  // Each sample adds at most 1 to either sum.
  for (const [name, sum] of [['ndcg10Sum', ndcg10Sum], ['reciprocalRankSum', reciprocalRankSum]] as const) {
    if (!Number.isFinite(sum) || sum < 0 || sum > samples) throw new TasteError(ErrorCodes.CONFIG_INVALID, `quality totals: ${name} must be in 0..samples (${samples}), got ${sum}`);
  }
  if (samples === 0) return;
  const key = qualityKey(prefix, modelVersion, hourStartMs(nowMs));
  try {
    // One key, one MULTI: a bucket never holds half a batch, on a Cluster too.
    const results = await redis
      .multi()
      .hincrby(key, Fields.samples, samples)
      .hincrby(key, Fields.hits10, hits10)
      .hincrbyfloat(key, Fields.ndcg10Sum, ndcg10Sum)
      .hincrbyfloat(key, Fields.reciprocalRankSum, reciprocalRankSum)
      .pexpire(key, QUALITY_TTL_MS)
      .exec();
    const failed = results?.find(([error]) => error);
    if (!results || failed) throw failed?.[0] ?? new Error('transaction discarded');
  } catch (cause) {
    throw new TasteError(ErrorCodes.STORE_UNAVAILABLE, `Redis: adding quality samples failed: ${(cause as Error).message}`, { cause, canRetry: true });
  }
}

/**
 * Sums the buckets of the last `hours` hours per version (absent → zeros): the hour of `nowMs`
 * (partly over) and the `hours - 1` before it.
 */
export async function readQualityTotals(redis: RedisClient, prefix: string, modelVersions: readonly string[], nowMs: number, hours: number): Promise<Map<string, QualityTotals>> {
  if (!Number.isInteger(hours) || hours < 1 || hours > 8 * 24) {
    throw new TasteError(ErrorCodes.CONFIG_INVALID, `quality hours must be an integer in 1..${8 * 24} (buckets live 8 days), got ${hours}`);
  }
  modelVersions.forEach(checkVersion);
  const current = hourStartMs(nowMs);
  const starts = Array.from({ length: hours }, (_, index) => current - index * HOUR_MS);
  let rows: (string | null)[][][];
  try {
    rows = await Promise.all(
      modelVersions.map((version) =>
        Promise.all(starts.map((start) => redis.hmget(qualityKey(prefix, version, start), Fields.samples, Fields.hits10, Fields.ndcg10Sum, Fields.reciprocalRankSum))),
      ),
    );
  } catch (cause) {
    throw new TasteError(ErrorCodes.STORE_UNAVAILABLE, `Redis: reading quality totals failed: ${(cause as Error).message}`, { cause, canRetry: true });
  }
  const totals = new Map<string, QualityTotals>();
  modelVersions.forEach((version, index) => {
    const sum = emptyTotals();
    for (const [samples, hits10, ndcg, rr] of rows[index] ?? []) {
      sum.samples += number(samples);
      sum.hits10 += number(hits10);
      sum.ndcg10Sum += number(ndcg);
      sum.reciprocalRankSum += number(rr);
    }
    totals.set(version, sum);
  });
  return totals;
}

/** HR@10, NDCG@10 and MRR of some totals; undefined without samples. */
export function qualityRates(totals: QualityTotals): { hitRate10: number; ndcg10: number; mrr: number } | undefined {
  if (totals.samples === 0) return undefined;
  return { hitRate10: totals.hits10 / totals.samples, ndcg10: totals.ndcg10Sum / totals.samples, mrr: totals.reciprocalRankSum / totals.samples };
}

function number(text: string | null | undefined): number {
  const value = text == null ? 0 : Number(text);
  return Number.isFinite(value) ? value : 0;
}

function checkVersion(modelVersion: string): void {
  if (!ROLLOUT_VERSION_PATTERN.test(modelVersion)) {
    throw new TasteError(ErrorCodes.CONFIG_INVALID, `model version ${JSON.stringify(modelVersion)} is not valid: use 1-64 of A-Z a-z 0-9 . _ -`);
  }
}
