import { ErrorCodes, TasteError } from '../common/errors.js';
import { UNKNOWN_ITEM_ID } from './features.js';

export interface ScoredItem {
  id: number;
  score: number;
}

/**
 * The model's item table (row i: the embedding of item i, in the user embeddings' space) and the
 * one way items are scored against a user: the dot product, summed in float64 as the offline
 * evaluation (training/taste_training/evaluate.py) does. The demo, `taste evaluate` and the
 * scoring RPCs all score through here.
 */
export class ItemScorer {
  /** Row-major, `rows × dim` float32. */
  readonly vectors: Float32Array;
  readonly dim: number;

  constructor(vectors: Float32Array, dim: number) {
    if (!Number.isInteger(dim) || dim < 1 || vectors.length % dim !== 0) {
      throw new TasteError(ErrorCodes.MODEL_CONTRACT, `an item table of ${vectors.length} floats is not whole rows of ${dim} dimensions`);
    }
    this.vectors = vectors;
    this.dim = dim;
  }

  get rows(): number {
    return this.vectors.length / this.dim;
  }

  /** The scores of `itemIds`, in their order. Reserved ids are scored like any row. */
  score(user: ArrayLike<number>, itemIds: readonly number[]): Float64Array {
    this.#checkUser(user);
    const scores = new Float64Array(itemIds.length);
    itemIds.forEach((id, index) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.rows) {
        throw new TasteError(ErrorCodes.CONFIG_INVALID, `item id ${id} is not in the item table (ids 0..${this.rows - 1})`);
      }
      scores[index] = this.#dot(user, id);
    });
    return scores;
  }

  /** Every row's score, reserved rows included: row i is item i (ranking among all items). */
  scoreAll(user: ArrayLike<number>): Float64Array {
    this.#checkUser(user);
    const scores = new Float64Array(this.rows);
    for (let id = 0; id < this.rows; id++) scores[id] = this.#dot(user, id);
    return scores;
  }

  /**
   * The `k` items with the highest scores, best first. The reserved ids (<pad>, <unk>) and the
   * `exclude`d ones (e.g. the user's own history) are never returned. Equal scores keep id order
   * (the lower id first, also when only one of them fits in `k`), so the answer is deterministic.
   * `accept`, when given, is asked about every other id: only those it accepts are ranked (e.g.
   * one item kind).
   */
  topK(user: ArrayLike<number>, k: number, exclude: Iterable<number> = [], accept?: (id: number) => boolean): ScoredItem[] {
    this.#checkUser(user);
    if (!Number.isInteger(k) || k < 0) throw new TasteError(ErrorCodes.CONFIG_INVALID, `k must be an integer >= 0, got ${k}`);
    const skip = new Set(exclude);
    const best: ScoredItem[] = [];
    for (let id = UNKNOWN_ITEM_ID + 1; id < this.rows && k > 0; id++) {
      if (skip.has(id) || (accept !== undefined && !accept(id))) continue;
      const score = this.#dot(user, id);
      if (best.length === k && !(score > best[k - 1]!.score)) continue;
      // After every equal score: ids arrive in increasing order, so ties stay in id order.
      let at = best.length;
      while (at > 0 && best[at - 1]!.score < score) at--;
      best.splice(at, 0, { id, score });
      if (best.length > k) best.pop();
    }
    return best;
  }

  #dot(user: ArrayLike<number>, id: number): number {
    const { dim, vectors } = this;
    const base = id * dim;
    let score = 0;
    for (let d = 0; d < dim; d++) score += user[d]! * vectors[base + d]!;
    return score;
  }

  #checkUser(user: ArrayLike<number>): void {
    if (user.length !== this.dim) {
      throw new TasteError(ErrorCodes.MODEL_CONTRACT, `a user vector of ${user.length} dimensions cannot be scored against items of ${this.dim}: is it from another model?`);
    }
  }
}
