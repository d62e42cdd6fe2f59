// Leave-one-out ranking metrics, defined exactly as training/taste_training/evaluate.py defines them,
// so numbers computed from served embeddings are comparable with the offline ones. The scores they
// rank come from ItemScorer.scoreAll (model/item-scorer.ts), summed in float64 like the offline side.
import { UNKNOWN_ITEM_ID } from '../model/features.js';

export const CUTOFFS = [1, 5, 10, 20] as const;

export type RankingMetrics = Record<string, number>;

/**
 * 0-based rank of `target` among all items: how many score strictly higher. The reserved ids
 * (<pad>, <unk>) and the `masked` items (the user's earlier items) never count; the target itself
 * is never masked.
 */
export function rankAmongAll(scores: Float64Array, target: number, masked: readonly number[] = []): number {
  const skip = new Set(masked);
  skip.delete(target);
  const targetScore = scores[target] ?? Number.NaN;
  let rank = 0;
  for (let item = UNKNOWN_ITEM_ID + 1; item < scores.length; item++) {
    if ((scores[item] ?? Number.NEGATIVE_INFINITY) > targetScore && !skip.has(item)) rank++;
  }
  return rank;
}

/** 0-based rank of `target` among itself and `negatives`. */
export function rankAmongSampled(scores: Float64Array, target: number, negatives: readonly number[]): number {
  const targetScore = scores[target] ?? Number.NaN;
  let rank = 0;
  for (const item of negatives) if ((scores[item] ?? Number.NEGATIVE_INFINITY) > targetScore) rank++;
  return rank;
}

/** HR@k, NDCG@k (k in CUTOFFS), MRR and MRR@10 averaged over users, plus `users`. */
export function metricsFromRanks(ranks: readonly number[]): RankingMetrics {
  const out: RankingMetrics = {};
  const n = ranks.length;
  const mean = (f: (rank: number) => number) => (n === 0 ? Number.NaN : ranks.reduce((sum, r) => sum + f(r), 0) / n);
  for (const k of CUTOFFS) {
    out[`HR@${k}`] = mean((r) => (r < k ? 1 : 0));
    out[`NDCG@${k}`] = mean((r) => (r < k ? 1 / Math.log2(r + 2) : 0));
  }
  out['MRR'] = mean((r) => 1 / (r + 1));
  out['MRR@10'] = mean((r) => (r < 10 ? 1 / (r + 1) : 0));
  out['users'] = n;
  return out;
}
