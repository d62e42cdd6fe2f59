// Leave-one-out ranking metrics, defined exactly as training/taste_training/evaluate.py defines them,
// so numbers computed from served embeddings are comparable with the offline ones. The scores they
// rank come from ItemScorer.scoreAll (model/item-scorer.ts), summed in float64 like the offline side.
export { rankAmongAll, rankAmongSampled } from '../model/ranking.js';

export const CUTOFFS = [1, 5, 10, 20] as const;

export type RankingMetrics = Record<string, number>;

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
