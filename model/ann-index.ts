import { createRequire } from 'node:module';
import type * as Usearch from 'usearch';
import { describeError, ErrorCodes, TasteError } from '../common/errors.js';

// usearch's ESM entry cannot find its own prebuilt binary (its directory walk recurses without
// end on Node 20); the CommonJS entry, the same code and types, loads it.
const usearch = createRequire(import.meta.url)('usearch') as typeof Usearch;

export interface AnnIndexOptions {
  /**
   * HNSW links per node (usearch `connectivity`): more is better recall, more memory and a slower
   * build. 32 rather than 16: on a 20k × 64 table of 2,000 clusters, recall@100 at a beam of 512
   * was 0.89 against 0.83, at half the search time (bench/results/2026-12-02-ranking/notes.md).
   * @default 32
   */
  connectivity?: number;
  /** Candidates kept while inserting (`expansion_add`): build quality against build time. @default 200 */
  expansionAdd?: number;
  /**
   * Candidates kept while searching (`expansion_search`); a search for more than this many keeps
   * that many instead. bench/ranking.bench.ts chose the default: recall@100 ≥ 0.95 at D = 64.
   * @default 512
   */
  expansionSearch?: number;
  /** Threads for the build. @default 0 (usearch picks: one per core) */
  threads?: number;
}

export const defaultAnnIndexOptions = { connectivity: 32, expansionAdd: 200, expansionSearch: 512, threads: 0 } as const;

export interface AnnMatch {
  id: number;
  /** The inner product with the query, as the index computed it (float32). */
  score: number;
}

/**
 * An approximate maximum-inner-product index over item rows: usearch's HNSW graph.
 *
 * HNSW navigates by distance, and an inner product over rows of different norms is no distance
 * (a long row is "near" everything), which made recall@100 plateau near 0.4 in the measurement
 * that chose this design. So each row x gets one more coordinate, sqrt(M² − |x|²) with M the
 * largest row norm, and the query a 0 there: every row then has norm M, and the cosine of the
 * extended vectors orders rows exactly as the inner product does (Bachrach et al., 2014).
 *
 * Only rows `firstId..rows-1` are indexed (the reserved <pad> and <unk> rows never are). The
 * index lives in native memory, outside the V8 heap; `memoryBytes` estimates it.
 */
export class AnnIndex {
  readonly #index: Usearch.Index;
  readonly #dim: number;
  readonly size: number;
  readonly buildSeconds: number;
  readonly connectivity: number;
  readonly expansionSearch: number;

  private constructor(index: Usearch.Index, dim: number, size: number, buildSeconds: number, connectivity: number, expansionSearch: number) {
    this.#index = index;
    this.#dim = dim;
    this.size = size;
    this.buildSeconds = buildSeconds;
    this.connectivity = connectivity;
    this.expansionSearch = expansionSearch;
  }

  /** Builds the index of rows `firstId..` of a row-major `rows × dim` table (blocks the thread: at load time only). */
  static build(vectors: Float32Array, dim: number, firstId: number, options: AnnIndexOptions = {}): AnnIndex {
    const settings = { ...defaultAnnIndexOptions, ...options };
    for (const name of ['connectivity', 'expansionAdd', 'expansionSearch'] as const) {
      const value = settings[name];
      if (!Number.isInteger(value) || value < 2) throw new TasteError(ErrorCodes.CONFIG_INVALID, `AnnIndex: ${name} must be an integer >= 2, got ${value}`);
    }
    if (!Number.isInteger(settings.threads) || settings.threads < 0) {
      throw new TasteError(ErrorCodes.CONFIG_INVALID, `AnnIndex: threads must be an integer >= 0, got ${settings.threads}`);
    }
    const rows = vectors.length / dim;
    const count = rows - firstId;
    if (!Number.isInteger(rows) || count < 1) {
      throw new TasteError(ErrorCodes.CONFIG_INVALID, `AnnIndex: a table of ${vectors.length} floats has no rows of ${dim} dimensions from id ${firstId} on`);
    }
    const started = performance.now();
    let maxNormSquared = 0;
    for (let id = firstId; id < rows; id++) maxNormSquared = Math.max(maxNormSquared, normSquared(vectors, id * dim, dim));
    const wide = dim + 1;
    const extended = new Float32Array(count * wide);
    const keys = new BigUint64Array(count);
    for (let row = 0; row < count; row++) {
      const id = firstId + row;
      extended.set(vectors.subarray(id * dim, (id + 1) * dim), row * wide);
      extended[row * wide + dim] = Math.sqrt(Math.max(0, maxNormSquared - normSquared(vectors, id * dim, dim)));
      keys[row] = BigInt(id);
    }
    let index: Usearch.Index;
    try {
      index = new usearch.Index({
        dimensions: wide,
        metric: usearch.MetricKind.Cos,
        quantization: usearch.ScalarKind.F32,
        connectivity: settings.connectivity,
        expansion_add: settings.expansionAdd,
        expansion_search: settings.expansionSearch,
        multi: false,
      });
      index.add(keys, extended, settings.threads);
    } catch (cause) {
      throw new TasteError(ErrorCodes.MODEL_LOAD, `AnnIndex: usearch could not build the index: ${describeError(cause)}`, { cause });
    }
    return new AnnIndex(index, dim, count, (performance.now() - started) / 1000, settings.connectivity, settings.expansionSearch);
  }

  /**
   * Estimated native memory: the extended rows (float32) plus the graph's links (4-byte ids,
   * 2 × connectivity at the base layer, a few more above it). Not read from usearch, which does
   * not report it to JavaScript; bench/ranking.bench.ts measures the process's RSS growth beside it.
   */
  get memoryBytes(): number {
    return this.size * ((this.#dim + 1) * 4 + (2 * this.connectivity + 8) * 4);
  }

  /**
   * Up to `count` rows with the highest inner product with `query`, best first (approximately).
   * `beam`: candidates kept while searching, recall against time. @default expansionSearch
   */
  search(query: ArrayLike<number>, count: number, beam: number = this.expansionSearch): AnnMatch[] {
    if (query.length !== this.#dim) {
      throw new TasteError(ErrorCodes.MODEL_CONTRACT, `a query of ${query.length} dimensions cannot search an index of ${this.#dim}`);
    }
    const wide = new Float32Array(this.#dim + 1);
    let norm = 0;
    for (let d = 0; d < this.#dim; d++) {
      wide[d] = query[d]!;
      norm += query[d]! * query[d]!;
    }
    // usearch's JavaScript binding searches with a beam of the requested count, whatever
    // expansion_search says (measured: recall@100 0.83 asking for 125, 0.97 asking for 512), so
    // the beam is asked for as the count and the best `count` kept.
    const wanted = Math.max(1, Math.min(count, this.size));
    const matches = this.#index.search(wide, Math.min(this.size, Math.max(wanted, beam)), 1);
    const found: AnnMatch[] = [];
    // cos = dot / (|q| · M); the caller re-scores exactly, so this score only orders.
    const scale = Math.sqrt(norm);
    for (let i = 0; i < matches.keys.length && found.length < wanted; i++) {
      const distance = matches.distances[i]!;
      if (!Number.isFinite(distance)) continue; // padding when fewer were found
      found.push({ id: Number(matches.keys[i]!), score: (1 - distance) * scale });
    }
    return found;
  }
}

function normSquared(vectors: Float32Array, base: number, dim: number): number {
  let sum = 0;
  for (let d = 0; d < dim; d++) sum += vectors[base + d]! * vectors[base + d]!;
  return sum;
}
