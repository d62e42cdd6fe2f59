import { ErrorCodes, TasteError } from '../common/errors.js';
import { AnnIndex, type AnnIndexOptions } from './ann-index.js';
import { UNKNOWN_ITEM_ID } from './features.js';
import type { ItemScorer, ScoredItem } from './item-scorer.js';
import type { ItemVocabulary } from './model-bundle.js';

/** The item kinds, named as taste.v1.ItemKind names them. */
export const ItemKinds = {
  UNSPECIFIED: 'ITEM_KIND_UNSPECIFIED',
  TRACK: 'ITEM_KIND_TRACK',
  PODCAST_EPISODE: 'ITEM_KIND_PODCAST_EPISODE',
  AUDIOBOOK_CHAPTER: 'ITEM_KIND_AUDIOBOOK_CHAPTER',
} as const;
export type ItemKind = (typeof ItemKinds)[keyof typeof ItemKinds];

const KIND_LIST: readonly ItemKind[] = Object.values(ItemKinds);
const KIND_BY_SEGMENT: ReadonlyMap<string, ItemKind> = new Map([
  ['track', ItemKinds.TRACK],
  ['episode', ItemKinds.PODCAST_EPISODE],
  ['chapter', ItemKinds.AUDIOBOOK_CHAPTER],
]);

/**
 * An item's kind from its URI: the second ':'-separated part, as the catalogue writes URIs
 * (`taste:track:42`, `taste:episode:7`, `taste:chapter:3`); UNSPECIFIED for anything else. The
 * model directory has no other record of kinds: items.tsv is one URI per line.
 */
export function itemKindOfUri(uri: string): ItemKind {
  const first = uri.indexOf(':');
  if (first < 0) return ItemKinds.UNSPECIFIED;
  const second = uri.indexOf(':', first + 1);
  return KIND_BY_SEGMENT.get(uri.slice(first + 1, second < 0 ? undefined : second)) ?? ItemKinds.UNSPECIFIED;
}

export interface ItemRetrievalOptions {
  /**
   * Tables with at least this many items get an approximate nearest-neighbour index at load time;
   * smaller ones are always searched exactly (recall 1, nothing to build). bench/ranking.bench.ts
   * measured the default: an exact top-100 at D = 64 takes 2.7 ms of a core at 10k items, 13 ms
   * at 50k and 27 ms at 100k (p50, shared 2-core machine), so above ~50k an exact search holds
   * the event loop past 10 ms, under 100 calls/s per core; the index answers in ~1 ms. 0: always
   * build one.
   * @default 50000
   */
  annMinItems?: number;
  /** The index's settings. */
  ann?: AnnIndexOptions;
  /**
   * Most candidates one approximate search may fetch to leave enough after the filters; a filter
   * that needs more (a rare kind, a long history) is answered by exact search instead.
   * @default 5000
   */
  maxFetch?: number;
}

export const defaultItemRetrievalOptions = { annMinItems: 50_000, maxFetch: 5000 } as const;

export interface RetrievalFilter {
  /** Only items of these kinds; absent or empty: every kind. */
  kinds?: ReadonlySet<ItemKind>;
  /** Item ids never to return (the user's history). */
  exclude?: ReadonlySet<number>;
}

export interface RetrievedItems {
  /** Best first, with the exact score (ItemScorer's float64 dot product); ties in id order. */
  items: ScoredItem[];
  /** Whether the candidates came from the index (else: an exact search of the whole table). */
  approximate: boolean;
}

// Over-fetch margin on top of what the filters are expected to remove: the index's own misses
// and an uneven spread of kinds near the query would otherwise send many searches to the fallback.
const OVERFETCH_MARGIN = 1.25;

/**
 * Top-k retrieval over one model's item table: exact search (ItemScorer.topK) for small tables,
 * an HNSW index (AnnIndex) for large ones. With the index, filters are applied after the search:
 * it fetches enough candidates for the kinds' share of the table and the excluded items, filters,
 * re-scores the survivors exactly, and falls back to exact search when fewer than k survive (or
 * when the fetch would exceed `maxFetch`). So the answer always has min(k, eligible items) items;
 * only which items can differ from exact search, at the index's recall.
 */
export class ItemRetrieval {
  readonly scorer: ItemScorer;
  readonly vocabulary: ItemVocabulary;
  /** Built when the table has at least `annMinItems` items. */
  readonly index: AnnIndex | undefined;
  readonly #kinds: Uint8Array;
  readonly #kindCounts: number[];
  readonly #maxFetch: number;

  constructor(scorer: ItemScorer, vocabulary: ItemVocabulary, options: ItemRetrievalOptions = {}) {
    if (vocabulary.size !== scorer.rows) {
      throw new TasteError(ErrorCodes.MODEL_CONTRACT, `the vocabulary has ${vocabulary.size} items but the item table ${scorer.rows} rows`);
    }
    const annMinItems = options.annMinItems ?? defaultItemRetrievalOptions.annMinItems;
    const maxFetch = options.maxFetch ?? defaultItemRetrievalOptions.maxFetch;
    if (!Number.isInteger(annMinItems) || annMinItems < 0) throw configError(`annMinItems must be an integer >= 0, got ${annMinItems}`);
    if (!Number.isInteger(maxFetch) || maxFetch < 1) throw configError(`maxFetch must be a positive integer, got ${maxFetch}`);
    this.scorer = scorer;
    this.vocabulary = vocabulary;
    this.#maxFetch = maxFetch;
    this.#kinds = new Uint8Array(scorer.rows);
    this.#kindCounts = KIND_LIST.map(() => 0);
    for (let id = UNKNOWN_ITEM_ID + 1; id < scorer.rows; id++) {
      const kind = KIND_LIST.indexOf(itemKindOfUri(vocabulary.uriOf(id) ?? ''));
      this.#kinds[id] = kind;
      this.#kindCounts[kind]!++;
    }
    const items = scorer.rows - (UNKNOWN_ITEM_ID + 1);
    this.index = items > 0 && items >= annMinItems ? AnnIndex.build(scorer.vectors, scorer.dim, UNKNOWN_ITEM_ID + 1, options.ann) : undefined;
  }

  /** Items that can be returned: every row but <pad> and <unk>. */
  get items(): number {
    return this.scorer.rows - (UNKNOWN_ITEM_ID + 1);
  }

  kindOf(id: number): ItemKind {
    return KIND_LIST[this.#kinds[id] ?? 0]!;
  }

  /** The `k` best items for `user` that pass `filter`. */
  recommend(user: ArrayLike<number>, k: number, filter: RetrievalFilter = {}): RetrievedItems {
    const kinds = filter.kinds !== undefined && filter.kinds.size > 0 ? new Set([...filter.kinds].map((kind) => KIND_LIST.indexOf(kind))) : undefined;
    const exclude = filter.exclude ?? new Set<number>();
    const accept = kinds === undefined ? undefined : (id: number) => kinds.has(this.#kinds[id]!);
    if (this.index !== undefined && k > 0) {
      const eligible = kinds === undefined ? this.items : [...kinds].reduce((sum, kind) => sum + (this.#kindCounts[kind] ?? 0), 0);
      const fetch = Math.ceil(((k + exclude.size) * this.items * OVERFETCH_MARGIN) / Math.max(1, eligible));
      if (eligible > 0 && fetch <= this.#maxFetch) {
        const ids = this.index
          .search(user, Math.max(k, fetch))
          .map(({ id }) => id)
          .filter((id) => !exclude.has(id) && (accept === undefined || accept(id)));
        if (ids.length >= k) {
          const scores = this.scorer.score(user, ids);
          const ranked = ids.map((id, at) => ({ id, score: scores[at]! }));
          ranked.sort((a, b) => b.score - a.score || a.id - b.id);
          return { items: ranked.slice(0, k), approximate: true };
        }
      }
    }
    return { items: this.scorer.topK(user, k, exclude, accept), approximate: false };
  }
}

function configError(message: string): TasteError {
  return new TasteError(ErrorCodes.CONFIG_INVALID, `ItemRetrieval: ${message}`);
}
