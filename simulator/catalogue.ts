// The synthetic catalogue: genres -> artists (shows, authors) -> albums (shows, books) -> items.
// Every item also gets a latent vector (genre centroid + artist offset + noise) that only the
// simulator sees: listeners choose and skip items by how well it matches their own taste vector.
import type { ItemKind__Output } from '../proto/generated/taste/v1/ItemKind.js';
import { checkInteger, checkNumber, checkSeed } from './errors.js';
import { allGenres, type GenreSpec } from './genres.js';
import { addScaled, normalize, randomUnitVector } from './latent.js';
import { albumTitle, artistName, itemTitle } from './names.js';
import { hashSeed, Random, WeightedSampler, type Seed } from './random.js';

export interface CatalogueOptions {
  /** Seed of the catalogue's own random stream. @default 1 */
  seed?: Seed;
  /** Total number of items: tracks + podcast episodes + audiobook chapters. @default 5000 */
  items?: number;
  /** Share of items that are podcast episodes. @default 0.06 */
  podcastShare?: number;
  /** Share of items that are audiobook chapters. @default 0.04 */
  audiobookShare?: number;
  /** Dimension of the latent vectors. @default 16 */
  latentDim?: number;
  /** Mean number of tracks per artist (episodes per show, chapters per author). @default 14 */
  tracksPerArtist?: number;
}

export const defaultCatalogueOptions = {
  seed: 1,
  items: 5000,
  podcastShare: 0.06,
  audiobookShare: 0.04,
  latentDim: 16,
  tracksPerArtist: 14,
} as const satisfies Required<CatalogueOptions>;

export type ResolvedCatalogueOptions = { readonly [K in keyof CatalogueOptions]-?: NonNullable<CatalogueOptions[K]> };

/** Smallest catalogue that still gives every genre a few items. */
export const minCatalogueItems = 200;

export interface CatalogueItem {
  /** Position in `catalogue.items`. */
  readonly index: number;
  /** `taste:track:<n>`, `taste:episode:<n>` or `taste:chapter:<n>`. */
  readonly uri: string;
  readonly kind: ItemKind__Output;
  /** Genre, podcast topic or audiobook category. */
  readonly genre: string;
  /** Artist, podcast show or author. */
  readonly artist: string;
  /** Album, podcast show or book. */
  readonly album: string;
  readonly title: string;
  readonly durationMs: number;
  /** In (0, 1]; 1 is the most popular item of its genre. Zipf-like within a genre. */
  readonly popularity: number;
  readonly genreIndex: number;
  readonly artistIndex: number;
  readonly albumIndex: number;
  /** 1-based position in its album / show / book. */
  readonly position: number;
  /** Latent vector (unit length); a view into `catalogue.vectors`. Simulator-only. */
  readonly vector: Float32Array;
}

export interface Genre {
  readonly index: number;
  readonly name: string;
  readonly kind: ItemKind__Output;
  readonly family: string;
  readonly share: number;
  readonly centroid: Float32Array;
  /** Item indices, most popular first. */
  readonly items: Uint32Array;
  /** Samples a position in `items` by popularity. */
  readonly itemSampler: WeightedSampler;
  /** Artist indices, most popular first. */
  readonly artists: Uint32Array;
  readonly artistSampler: WeightedSampler;
  /** Other genres of the same kind, same family first, then closest first (at most 3). */
  readonly neighbours: readonly number[];
}

export interface Artist {
  readonly index: number;
  readonly name: string;
  readonly genreIndex: number;
  readonly popularity: number;
  /** Item indices, most popular first. */
  readonly items: Uint32Array;
  readonly itemSampler: WeightedSampler;
  readonly albums: Uint32Array;
}

export interface Album {
  readonly index: number;
  readonly title: string;
  readonly artistIndex: number;
  /** Item indices in play order (track, episode or chapter number). */
  readonly items: Uint32Array;
}

export interface Catalogue {
  readonly options: ResolvedCatalogueOptions;
  readonly latentDim: number;
  readonly items: readonly CatalogueItem[];
  readonly genres: readonly Genre[];
  readonly artists: readonly Artist[];
  readonly albums: readonly Album[];
  /** Item latent vectors, row-major `items.length x latentDim`. */
  readonly vectors: Float32Array;
  /** Tracks across all genres, most popular first, with a sampler by popularity. */
  readonly popularTracks: Uint32Array;
  readonly popularTrackSampler: WeightedSampler;
  /** The item with this URI, or undefined. */
  itemByUri(uri: string): CatalogueItem | undefined;
}

export function resolveCatalogueOptions(options: CatalogueOptions = {}): ResolvedCatalogueOptions {
  const resolved = { ...defaultCatalogueOptions, ...stripUndefined(options) };
  checkInteger('catalogue.items', resolved.items, minCatalogueItems, 10_000_000);
  checkNumber('catalogue.podcastShare', resolved.podcastShare, 0, 0.5);
  checkNumber('catalogue.audiobookShare', resolved.audiobookShare, 0, 0.5);
  checkInteger('catalogue.latentDim', resolved.latentDim, 2, 1024);
  checkNumber('catalogue.tracksPerArtist', resolved.tracksPerArtist, 1, 1000);
  checkSeed('catalogue.seed', resolved.seed);
  return resolved;
}

/** Builds the catalogue. Deterministic: the same options give the same catalogue. */
export function createCatalogue(options: CatalogueOptions = {}): Catalogue {
  const opts = resolveCatalogueOptions(options);
  const rng = new Random(hashSeed(opts.seed, 'catalogue'));
  const dim = opts.latentDim;

  const spokenItems = Math.round(opts.items * (opts.podcastShare + opts.audiobookShare));
  const episodes = Math.round(opts.items * opts.podcastShare);
  const counts = new Map<string, number>();
  const byKind: Array<[ItemKind__Output, number]> = [
    ['ITEM_KIND_TRACK', opts.items - spokenItems],
    ['ITEM_KIND_PODCAST_EPISODE', episodes],
    ['ITEM_KIND_AUDIOBOOK_CHAPTER', spokenItems - episodes],
  ];
  for (const [kind, total] of byKind) {
    const specs = allGenres.filter((g) => g.kind === kind);
    const split = apportion(total, specs.map((g) => g.share));
    specs.forEach((g, i) => counts.set(g.name, split[i]!));
  }
  const specs = allGenres.filter((g) => (counts.get(g.name) ?? 0) > 0);

  // Families give related genres a shared component (cosine ≈ 0.5 between siblings, ≈ 0 ± 0.25
  // otherwise), so the closest neighbours of a genre are mostly its siblings.
  const familyVectors = new Map<string, Float32Array>();
  const centroids = specs.map((spec) => {
    let family = familyVectors.get(spec.family);
    if (family === undefined) {
      family = randomUnitVector(rng, dim);
      familyVectors.set(spec.family, family);
    }
    return normalize(addScaled(addScaled(new Float32Array(dim), family, 0.7), randomUnitVector(rng, dim), 0.714));
  });

  const neighbourLists = specs.map((spec, g) =>
    specs
      .map((other, o) => ({ o, other, similarity: cosine(centroids[g]!, centroids[o]!) }))
      .filter((n) => n.o !== g && n.other.kind === spec.kind)
      .map((n) => ({ ...n, sibling: n.other.family === spec.family ? 1 : 0 }))
      .sort((x, y) => y.sibling - x.sibling || y.similarity - x.similarity || x.o - y.o)
      .slice(0, 3)
      .map((n) => n.o),
  );

  const vectors = new Float32Array(opts.items * dim);
  const rawPopularity = new Float64Array(opts.items);
  const items: Array<Mutable<CatalogueItem>> = [];
  const artists: Artist[] = [];
  const albums: Album[] = [];
  const usedArtistNames = new Set<string>();
  const counters = { ITEM_KIND_TRACK: 0, ITEM_KIND_PODCAST_EPISODE: 0, ITEM_KIND_AUDIOBOOK_CHAPTER: 0, ITEM_KIND_UNSPECIFIED: 0 };
  const uriPrefix = { ITEM_KIND_TRACK: 'taste:track:', ITEM_KIND_PODCAST_EPISODE: 'taste:episode:', ITEM_KIND_AUDIOBOOK_CHAPTER: 'taste:chapter:', ITEM_KIND_UNSPECIFIED: 'taste:item:' };

  const genres: Genre[] = specs.map((spec, genreIndex) => {
    const centroid = centroids[genreIndex]!;
    const genreItems: number[] = [];
    const genreArtists: number[] = [];
    let remaining = counts.get(spec.name)!;
    for (let artistRank = 0; remaining > 0; artistRank++) {
      const size = Math.min(remaining, artistSize(rng, opts.tracksPerArtist));
      remaining -= size;
      const artistIndex = artists.length;
      const artistVector = normalize(addScaled(addScaled(new Float32Array(dim), centroid, 1), randomUnitVector(rng, dim), 0.55));
      const artistPopularity = 1 / Math.pow(artistRank + 1, 0.9);
      const name = uniqueName(rng, spec, usedArtistNames);
      const artistItems: number[] = [];
      const artistAlbums: number[] = [];
      const hitOrder = rng.shuffle(Array.from({ length: size }, (_, i) => i));
      let made = 0;
      while (made < size) {
        const albumSize = Math.min(size - made, albumSizeFor(rng, spec));
        const albumIndex = albums.length;
        const title = spec.kind === 'ITEM_KIND_PODCAST_EPISODE' ? name : albumTitle(rng);
        const albumItems = new Uint32Array(albumSize);
        for (let p = 0; p < albumSize; p++) {
          const index = items.length;
          const row = vectors.subarray(index * dim, (index + 1) * dim);
          row.set(artistVector);
          normalize(addScaled(row, randomUnitVector(rng, dim), 0.3));
          const n = made + p; // position within the artist
          const popularityRank =
            spec.kind === 'ITEM_KIND_TRACK' ? hitOrder[n]! : spec.kind === 'ITEM_KIND_PODCAST_EPISODE' ? size - 1 - n : p;
          rawPopularity[index] = artistPopularity / Math.pow(popularityRank + 1, 0.6);
          const position = spec.kind === 'ITEM_KIND_PODCAST_EPISODE' ? n + 1 : p + 1;
          items.push({
            index,
            uri: uriPrefix[spec.kind] + String(++counters[spec.kind]),
            kind: spec.kind,
            genre: spec.name,
            artist: name,
            album: title,
            title: itemTitle(rng, spec.titleStyle, position, title),
            durationMs: durationFor(rng, spec),
            popularity: 0, // set below, once the genre's maximum is known
            genreIndex,
            artistIndex,
            albumIndex,
            position,
            vector: row,
          });
          albumItems[p] = index;
          artistItems.push(index);
          genreItems.push(index);
        }
        albums.push({ index: albumIndex, title, artistIndex, items: albumItems });
        artistAlbums.push(albumIndex);
        made += albumSize;
      }
      genreArtists.push(artistIndex);
      const sortedArtistItems = sortByPopularity(artistItems, rawPopularity);
      artists.push({
        index: artistIndex,
        name,
        genreIndex,
        popularity: artistPopularity,
        items: sortedArtistItems,
        itemSampler: new WeightedSampler(Array.from(sortedArtistItems, (i) => rawPopularity[i]!)),
        albums: new Uint32Array(artistAlbums),
      });
    }
    let maxPopularity = 0;
    for (const index of genreItems) maxPopularity = Math.max(maxPopularity, rawPopularity[index]!);
    for (const index of genreItems) items[index]!.popularity = rawPopularity[index]! / maxPopularity;
    const sortedItems = sortByPopularity(genreItems, rawPopularity);
    return {
      index: genreIndex,
      name: spec.name,
      kind: spec.kind,
      family: spec.family,
      share: spec.share,
      centroid,
      items: sortedItems,
      itemSampler: new WeightedSampler(Array.from(sortedItems, (i) => items[i]!.popularity)),
      artists: new Uint32Array(genreArtists), // created in popularity order
      artistSampler: new WeightedSampler(genreArtists.map((a) => artists[a]!.popularity)),
      neighbours: neighbourLists[genreIndex]!,
    };
  });

  const trackIndices = items.filter((item) => item.kind === 'ITEM_KIND_TRACK').map((item) => item.index);
  const globalWeight = (i: number): number => items[i]!.popularity * genres[items[i]!.genreIndex]!.share;
  const popularTracks = new Uint32Array(trackIndices.sort((x, y) => globalWeight(y) - globalWeight(x) || x - y));
  const byUri = new Map(items.map((item) => [item.uri, item]));

  return {
    options: opts,
    latentDim: dim,
    items,
    genres,
    artists,
    albums,
    vectors,
    popularTracks,
    popularTrackSampler: new WeightedSampler(Array.from(popularTracks, globalWeight)),
    itemByUri: (uri) => byUri.get(uri),
  };
}

/** Splits `total` into integer parts proportional to `shares` (largest remainder), each ≥ 1 when possible. */
function apportion(total: number, shares: readonly number[]): number[] {
  const sum = shares.reduce((a, b) => a + b, 0);
  const exact = shares.map((s) => (total * s) / sum);
  const parts = exact.map(Math.floor);
  let left = total - parts.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => ({ i, r: e - Math.floor(e) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (let k = 0; left > 0; k++, left--) parts[order[k % order.length]!.i]! += 1;
  // Steal from the largest part so that small catalogues still have every genre.
  for (let i = 0; i < parts.length; i++) {
    if (parts[i] === 0 && total >= parts.length) {
      const largest = parts.indexOf(Math.max(...parts));
      parts[largest]! -= 1;
      parts[i] = 1;
    }
  }
  return parts;
}

function artistSize(rng: Random, mean: number): number {
  const sigma = 0.7;
  return Math.max(1, Math.round(rng.logNormal(Math.log(mean) - (sigma * sigma) / 2, sigma)));
}

function albumSizeFor(rng: Random, spec: GenreSpec): number {
  switch (spec.kind) {
    case 'ITEM_KIND_PODCAST_EPISODE':
      return Number.MAX_SAFE_INTEGER; // a show is one "album" of all its episodes
    case 'ITEM_KIND_AUDIOBOOK_CHAPTER':
      return rng.intBetween(6, 20);
    default:
      return rng.chance(0.25) ? rng.intBetween(1, 4) : rng.intBetween(7, 13); // singles/EPs and albums
  }
}

function durationFor(rng: Random, spec: GenreSpec): number {
  const minSec = spec.kind === 'ITEM_KIND_TRACK' ? 75 : 300;
  const maxSec = spec.kind === 'ITEM_KIND_TRACK' ? 1800 : 3 * 3600;
  const sec = Math.min(maxSec, Math.max(minSec, rng.normal(spec.durationMeanSec, spec.durationSdSec)));
  return Math.round(sec * 1000);
}

function uniqueName(rng: Random, spec: GenreSpec, used: Set<string>): string {
  for (let attempt = 0; attempt < 20; attempt++) {
    const name = artistName(rng, spec.nameStyle);
    if (!used.has(name)) {
      used.add(name);
      return name;
    }
  }
  // Name space exhausted (huge catalogues): disambiguate like real services do.
  for (let n = 2; ; n++) {
    const name = `${artistName(rng, spec.nameStyle)} ${n}`;
    if (!used.has(name)) {
      used.add(name);
      return name;
    }
  }
}

function sortByPopularity(indices: number[], popularity: Float64Array): Uint32Array {
  return new Uint32Array(indices.sort((x, y) => popularity[y]! - popularity[x]! || x - y));
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function cosine(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function stripUndefined<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Partial<T>;
}
