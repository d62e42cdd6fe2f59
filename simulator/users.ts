// Simulated listeners: a latent taste (a mixture of 1–3 genres, and the vector it implies) and an
// activity level. Each user is derived from (seed, index) alone, so adding users never changes
// the existing ones.
import type { Catalogue, Genre } from './catalogue.js';
import { addScaled, normalize, randomUnitVector } from './latent.js';
import { hashSeed, Random, type Seed } from './random.js';

export interface TasteGenre {
  readonly genreIndex: number;
  readonly genre: string;
  /** Share of this genre in the user's taste; a user's weights sum to 1. */
  readonly weight: number;
}

export interface SimUser {
  readonly index: number;
  readonly userId: string;
  /** The true taste, heaviest genre first. */
  readonly tastes: readonly TasteGenre[];
  /** The true taste vector (unit length), in the catalogue's latent space. */
  readonly vector: Float32Array;
  /** Relative activity (mean ≈ 1 over users, Pareto tail: a few heavy users, many light ones). */
  readonly activity: number;
  /** Mean listening sessions per day. */
  readonly sessionsPerDay: number;
  /** Mean plays per music session. */
  readonly playsPerSession: number;
  /** Where the user lives, for the daily rhythm (hours from UTC). */
  readonly utcOffsetHours: number;
  /**
   * Bit i set = `tastes[i]` shows in the user's plays from the start. The others are tastes the
   * user has but does not play yet: a search for them is what reveals them (and then plays follow).
   */
  readonly initiallyPlayed: number;
  /** Seed of the user's own event stream. */
  readonly eventSeed: number;
}

export interface UserPopulationOptions {
  /** @default 1 */
  seed?: Seed;
  /** Number of users. @default 1000 */
  users?: number;
  /** Mean sessions per user per day (before the activity multiplier). @default 1.5 */
  sessionsPerDay?: number;
  /** Mean plays per music session. @default 10 */
  playsPerSession?: number;
  /** Pareto shape of activity: lower = more skewed (1.1 very, 3 barely). @default 1.3 */
  activityShape?: number;
  /** Cap on a user's activity multiplier. @default 10 */
  maxActivity?: number;
  /** `userId` = prefix + index. @default 'user-' */
  userIdPrefix?: string;
}

export const defaultUserPopulationOptions = {
  seed: 1,
  users: 1000,
  sessionsPerDay: 1.5,
  playsPerSession: 10,
  activityShape: 1.3,
  maxActivity: 10,
  userIdPrefix: 'user-',
} as const satisfies Required<UserPopulationOptions>;

export type ResolvedUserPopulationOptions = { readonly [K in keyof UserPopulationOptions]-?: NonNullable<UserPopulationOptions[K]> };

const utcOffsets = [-8, -6, -5, -3, 0, 1, 2, 3, 5.5, 7, 8, 9] as const;
const utcOffsetWeights = [6, 4, 8, 5, 7, 12, 6, 3, 8, 4, 6, 5] as const;

/** User `index` of the population. */
export function createUser(catalogue: Catalogue, index: number, options: ResolvedUserPopulationOptions): SimUser {
  const rng = new Random(hashSeed(options.seed, 'user', index));
  const tastes = chooseTastes(rng, catalogue);

  const vector = new Float32Array(catalogue.latentDim);
  for (const taste of tastes) addScaled(vector, catalogue.genres[taste.genreIndex]!.centroid, taste.weight);
  normalize(addScaled(normalize(vector), randomUnitVector(rng, catalogue.latentDim), 0.35));

  let initiallyPlayed = 1;
  for (let i = 1; i < tastes.length; i++) if (rng.chance(0.5)) initiallyPlayed |= 1 << i;

  const shape = options.activityShape;
  const pareto = Math.pow(1 - rng.float(), -1 / shape); // ≥ 1, mean shape/(shape-1)
  const activity = Math.min(options.maxActivity, (pareto * (shape - 1)) / shape);

  return {
    index,
    userId: options.userIdPrefix + String(index),
    tastes,
    vector,
    activity,
    sessionsPerDay: options.sessionsPerDay * activity,
    playsPerSession: Math.max(1, options.playsPerSession * rng.logNormal(-0.08, 0.4)),
    utcOffsetHours: rng.pickWeighted(utcOffsets, utcOffsetWeights),
    initiallyPlayed,
    eventSeed: hashSeed(options.seed, 'events', index),
  };
}

/** Users 0..options.users-1. */
export function createUsers(catalogue: Catalogue, options: ResolvedUserPopulationOptions): SimUser[] {
  const users: SimUser[] = [];
  for (let i = 0; i < options.users; i++) users.push(createUser(catalogue, i, options));
  return users;
}

function chooseTastes(rng: Random, catalogue: Catalogue): TasteGenre[] {
  const music = catalogue.genres.filter((g) => g.kind === 'ITEM_KIND_TRACK');
  const spoken = catalogue.genres.filter((g) => g.kind !== 'ITEM_KIND_TRACK');
  const byShare = (genres: readonly Genre[]): Genre =>
    rng.pickWeighted(
      genres,
      genres.map((g) => g.share),
    );

  const count = rng.pickWeighted([1, 2, 3], [0.3, 0.45, 0.25]);
  const primary = spoken.length > 0 && rng.chance(0.05) ? byShare(spoken) : byShare(music);
  const chosen: Genre[] = [primary];
  for (let attempt = 0; chosen.length < count && attempt < 20; attempt++) {
    const r = rng.float();
    let candidate: Genre;
    if (r < 0.55 && primary.neighbours.length > 0) candidate = catalogue.genres[rng.pick(primary.neighbours)]!;
    else if (r < 0.8 || spoken.length === 0) candidate = byShare(music);
    else candidate = byShare(spoken);
    if (!chosen.includes(candidate)) chosen.push(candidate);
  }

  // The primary genre gets a head start so that most users have one clearly main genre.
  const raw = chosen.map((_, i) => rng.exponential(1) + (i === 0 ? 0.8 : 0));
  const total = raw.reduce((a, b) => a + b, 0);
  return chosen
    .map((genre, i) => ({ genreIndex: genre.index, genre: genre.name, weight: raw[i]! / total }))
    .sort((a, b) => b.weight - a.weight || a.genreIndex - b.genreIndex);
}
