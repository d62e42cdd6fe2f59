// The rank of a held-out item among the model's items, defined exactly as
// training/taste_training/evaluate.py defines it. Offline evaluation (evaluation/) and the stream's
// live quality (updater/live-quality.ts) both rank through here, so their numbers are comparable.
import { UNKNOWN_ITEM_ID } from './features.js';

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
