import test from 'ava';
import { ItemScorer } from '../../model/item-scorer.js';
import { itemKindOfUri, ItemKinds, ItemRetrieval } from '../../model/item-retrieval.js';
import { ItemVocabulary } from '../../model/model-bundle.js';

// A synthetic table: N items around 200 centres in D = 16, with row norms from 0.5 to 1.2 (as in
// a trained table: an inner product, not a cosine, ranks them). Every 20th item is an episode.
const N = 20_000;
const D = 16;

function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
}
const next = random(42);
const gauss = () => Math.sqrt(-2 * Math.log(next() || 1e-12)) * Math.cos(2 * Math.PI * next());
const centres = Array.from({ length: 200 }, () => Array.from({ length: D }, gauss));
const vectors = new Float32Array((N + 2) * D); // rows 0 and 1: <pad>, <unk> (zero)
for (let id = 2; id < N + 2; id++) {
  const centre = centres[Math.floor(next() * centres.length)]!;
  const row = centre.map((value) => value + 0.7 * gauss());
  const scale = (0.5 + 0.7 * next()) / Math.hypot(...row);
  row.forEach((value, d) => (vectors[id * D + d] = value * scale));
}
const uris = ['<pad>', '<unk>', ...Array.from({ length: N }, (_, i) => (i % 20 === 0 ? `taste:episode:${i}` : `taste:track:${i}`))];
const queries = Array.from({ length: 30 }, () => {
  const q = Array.from({ length: D }, gauss);
  const norm = Math.hypot(...q);
  return Float32Array.from(q, (value) => value / norm);
});

/** The test's own exact ranking: every item's dot product, sorted. */
function bruteForce(query: Float32Array, k: number, keep: (id: number) => boolean = () => true): number[] {
  const scored: { id: number; score: number }[] = [];
  for (let id = 2; id < N + 2; id++) {
    if (!keep(id)) continue;
    let score = 0;
    for (let d = 0; d < D; d++) score += query[d]! * vectors[id * D + d]!;
    scored.push({ id, score });
  }
  return scored.sort((a, b) => b.score - a.score || a.id - b.id).slice(0, k).map(({ id }) => id);
}

const retrieval = new ItemRetrieval(new ItemScorer(vectors, D), new ItemVocabulary(uris), { annMinItems: N });

test('item kinds come from the second part of the URI', (t) => {
  t.is(itemKindOfUri('taste:track:1'), ItemKinds.TRACK);
  t.is(itemKindOfUri('spotify:episode:abc'), ItemKinds.PODCAST_EPISODE);
  t.is(itemKindOfUri('taste:chapter:9'), ItemKinds.AUDIOBOOK_CHAPTER);
  t.is(itemKindOfUri('taste:artist:9'), ItemKinds.UNSPECIFIED);
  t.is(itemKindOfUri('<pad>'), ItemKinds.UNSPECIFIED);
});

test('a table at annMinItems gets an index, one below it none', (t) => {
  t.truthy(retrieval.index);
  t.is(retrieval.index?.size, N, 'every item, not the reserved rows');
  t.is(new ItemRetrieval(new ItemScorer(vectors, D), new ItemVocabulary(uris), { annMinItems: N + 1 }).index, undefined);
});

test('the index: recall@100 against brute force is at least 0.95 on a clustered table of varying norms', (t) => {
  let hits = 0;
  for (const query of queries) {
    const truth = new Set(bruteForce(query, 100));
    const { items, approximate } = retrieval.recommend(query, 100);
    t.true(approximate);
    t.is(items.length, 100);
    hits += items.filter(({ id }) => truth.has(id)).length;
  }
  const recall = hits / (queries.length * 100);
  t.log(`recall@100: ${recall.toFixed(4)}`);
  t.true(recall >= 0.95, `recall@100 ${recall}`);
});

test('filters with the index: only the kind asked for, never an excluded item, exact scores, best first', (t) => {
  const query = queries[0]!;
  const truthAll = bruteForce(query, 10);
  const exclude = new Set(truthAll.slice(0, 5));
  const { items } = retrieval.recommend(query, 50, { exclude });
  t.false(items.some(({ id }) => exclude.has(id)));
  t.deepEqual(
    items.map(({ id }) => id).slice(0, 5),
    truthAll.slice(5, 10),
    'the next best items move up',
  );
  for (let i = 1; i < items.length; i++) t.true(items[i - 1]!.score >= items[i]!.score);

  const isEpisode = (id: number) => uris[id]!.startsWith('taste:episode:');
  const episodes = retrieval.recommend(query, 20, { kinds: new Set([ItemKinds.PODCAST_EPISODE]) });
  t.true(episodes.items.every(({ id }) => isEpisode(id)));
  const truth = new Set(bruteForce(query, 20, isEpisode));
  t.true(episodes.items.filter(({ id }) => truth.has(id)).length >= 18, 'recall of the filtered search');
});

test('a filter the over-fetch cannot satisfy falls back to exact search, which finds them all', (t) => {
  const query = queries[1]!;
  // 1,000 episodes in 20,000 items: k = 900 would need an over-fetch far beyond maxFetch.
  const isEpisode = (id: number) => uris[id]!.startsWith('taste:episode:');
  const { items, approximate } = retrieval.recommend(query, 900, { kinds: new Set([ItemKinds.PODCAST_EPISODE]) });
  t.false(approximate);
  t.deepEqual(
    items.map(({ id }) => id),
    bruteForce(query, 900, isEpisode),
  );
});
