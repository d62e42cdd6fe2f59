// Leave-one-out ranking metrics, defined exactly as training/taste_training/evaluate.py defines them,
// so numbers computed from served embeddings are comparable with the offline ones.
import { UNKNOWN_ITEM_ID } from '../model/features.js';
import type { ItemTable } from '../model/model-bundle.js';

export const CUTOFFS = [1, 5, 10, 20] as const;

export type RankingMetrics = Record<string, number>;

/** user · row for every item row, in float64 (the offline side ranks in float64 too). */
export function scoreItems(vector: Float32Array | readonly number[], table: ItemTable): Float64Array {
  const { dim, vectors } = table;
  const scores = new Float64Array(table.rows);
  for (let row = 0; row < table.rows; row++) {
    const base = row * dim;
    let score = 0;
    for (let d = 0; d < dim; d++) score += (vector[d] ?? 0) * (vectors[base + d] ?? 0);
    scores[row] = score;
  }
  return scores;
}

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
