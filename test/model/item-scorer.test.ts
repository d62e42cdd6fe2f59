import test from 'ava';
import { TasteError } from '../../common/errors.js';
import { ItemScorer } from '../../model/item-scorer.js';

// A 2-d table. Rows 0 and 1 are <pad> and <unk> (zero, like in a real table); items 2 and 7 are
// the same vector, so they tie. Every value is exact in float32.
const table = new ItemScorer(
  Float32Array.from([
    [0, 0], // 0 <pad>
    [0, 0], // 1 <unk>
    [1, 0], // 2
    [0, 1], // 3
    [1, 1], // 4
    [-1, 0], // 5
    [0.5, 0.5], // 6
    [1, 0], // 7, the same as 2
  ].flat()),
  2,
);
// By hand, user · row for user (2, 1): 2 → 2, 3 → 1, 4 → 3, 5 → -2, 6 → 1.5, 7 → 2.
const user = [2, 1];

test('score: the dot product of each requested item with the user, in request order', (t) => {
  t.deepEqual(Array.from(table.score(user, [5, 2, 4, 6, 3])), [-2, 2, 3, 1.5, 1]);
  t.deepEqual(Array.from(table.score(user, [0, 1])), [0, 0], 'reserved ids score like any row');
  t.deepEqual(Array.from(table.score(Float32Array.from(user), [7, 7])), [2, 2], 'a Float32Array user and repeated ids');
});

test('scoreAll: one score per row, reserved rows included', (t) => {
  t.deepEqual(Array.from(table.scoreAll(user)), [0, 0, 2, 1, 3, -2, 1.5, 2]);
});

test('topK: best first, never a reserved id; equal scores keep id order, also at the cut', (t) => {
  const ids = (k: number, exclude?: number[]) => table.topK(user, k, exclude).map(({ id }) => id);
  t.deepEqual(table.topK(user, 3), [
    { id: 4, score: 3 },
    { id: 2, score: 2 },
    { id: 7, score: 2 },
  ]);
  t.deepEqual(ids(2), [4, 2], 'of the tied 2 and 7, the lower id is kept');
  t.deepEqual(ids(100), [4, 2, 7, 6, 3, 5], 'k beyond the table: every item, reserved ids left out');
  t.deepEqual(ids(0), []);
});

test('topK: excluded items (e.g. the user history) are skipped, and the next ones move up', (t) => {
  t.deepEqual(table.topK(user, 3, [4, 2]), [
    { id: 7, score: 2 },
    { id: 6, score: 1.5 },
    { id: 3, score: 1 },
  ]);
  t.deepEqual(
    table.topK(user, 2, new Set([7])).map(({ id }) => id),
    [4, 2],
  );
});

test('a user vector of another dimension, an id outside the table or a bad k is refused', (t) => {
  t.throws(() => table.score([1, 0, 0], [2]), { instanceOf: TasteError, message: /3 dimensions cannot be scored against items of 2/ });
  t.throws(() => table.topK([1], 1), { instanceOf: TasteError });
  t.throws(() => table.score(user, [8]), { instanceOf: TasteError, message: /item id 8 is not in the item table \(ids 0\.\.7\)/ });
  t.throws(() => table.score(user, [-1]), { instanceOf: TasteError });
  t.throws(() => table.topK(user, 1.5), { instanceOf: TasteError, message: /k must be an integer/ });
  t.throws(() => new ItemScorer(new Float32Array(5), 2), { instanceOf: TasteError, message: /not whole rows of 2 dimensions/ });
});
