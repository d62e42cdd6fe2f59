// How a listener behaves within one session: where the session starts (home, a playlist, radio,
// an album, an artist page, the library or a search), which item comes next (a softmax over
// taste affinity among a context's candidates: album order, the same artist, the genre and its
// neighbours, popular items), whether it is skipped (likelier when it fits the taste badly), and
// when the user searches and for what. This is the structure a sequence model can learn.
import type { ItemKind__Output } from '../proto/generated/taste/v1/ItemKind.js';
import type { Catalogue, CatalogueItem } from './catalogue.js';
import { dotRow } from './latent.js';
import { typedQuery } from './queries.js';
import { Random } from './random.js';
import type { EndReasonName, EventRecord, PlayContextName } from '../events/event-record.js';
import type { SimUser } from './users.js';

export interface BehaviourOptions {
  /** Chance that the next step of a session is a search rather than a play. */
  readonly searchRate: number;
  /** Softmax temperature over taste affinity: lower = users stick closer to their taste. */
  readonly temperature: number;
}

/** Per-user memory that carries from one session to the next. */
export interface UserState {
  readonly user: SimUser;
  readonly rng: Random;
  /** Bit i set = `user.tastes[i]` has shown in plays (a search can reveal a new one). */
  played: number;
  /** Items the user liked (completed, sometimes): what "library" sessions replay. */
  readonly library: Int32Array;
  libraryCount: number;
  libraryNext: number;
}

const LIBRARY_SIZE = 64;
const RECENT_SIZE = 8;
const MAX_CANDIDATES = 48;
const MAX_PLAYS_PER_SESSION = 150;

const Context = {
  search: 'PLAY_CONTEXT_SEARCH',
  playlist: 'PLAY_CONTEXT_PLAYLIST',
  radio: 'PLAY_CONTEXT_RADIO',
  album: 'PLAY_CONTEXT_ALBUM',
  home: 'PLAY_CONTEXT_HOME',
  artist: 'PLAY_CONTEXT_ARTIST',
  library: 'PLAY_CONTEXT_LIBRARY',
} as const satisfies Record<string, PlayContextName>;

const musicStarts = [Context.home, Context.playlist, Context.radio, Context.album, Context.artist, Context.library, Context.search] as const;
const musicStartWeights = [0.26, 0.24, 0.12, 0.12, 0.07, 0.07, 0.12] as const;

/** Baseline skip chance by context, before taste fit: people skip more on radio and home feeds. */
const skipBase: Record<PlayContextName, number> = {
  PLAY_CONTEXT_UNSPECIFIED: 0.1,
  PLAY_CONTEXT_SEARCH: 0.03,
  PLAY_CONTEXT_PLAYLIST: 0.08,
  PLAY_CONTEXT_RADIO: 0.12,
  PLAY_CONTEXT_ALBUM: 0.06,
  PLAY_CONTEXT_HOME: 0.1,
  PLAY_CONTEXT_ARTIST: 0.06,
  PLAY_CONTEXT_LIBRARY: 0.04,
};

/** How strongly each context keeps playing the current artist (added to the softmax score). */
const sameArtistBonus: Record<PlayContextName, number> = {
  PLAY_CONTEXT_UNSPECIFIED: 0,
  PLAY_CONTEXT_SEARCH: 1.5,
  PLAY_CONTEXT_PLAYLIST: 0,
  PLAY_CONTEXT_RADIO: 0.8,
  PLAY_CONTEXT_ALBUM: 2,
  PLAY_CONTEXT_HOME: 0.5,
  PLAY_CONTEXT_ARTIST: 0,
  PLAY_CONTEXT_LIBRARY: 0,
};

/**
 * Generates sessions. One instance per event stream: it owns scratch buffers, so it is not
 * reentrant, but it holds no per-user state (that is `UserState`).
 */
export class ListeningBehaviour {
  readonly #catalogue: Catalogue;
  readonly #options: BehaviourOptions;
  readonly #candidates = new Int32Array(MAX_CANDIDATES);
  readonly #scores = new Float64Array(MAX_CANDIDATES);
  readonly #recent = new Int32Array(RECENT_SIZE);
  #candidateCount = 0;
  #recentNext = 0;

  // Per-session state (valid during `session()` only).
  #state!: UserState;
  #rng!: Random;
  #out!: EventRecord[];
  #time = 0;
  #endMs = 0;

  constructor(catalogue: Catalogue, options: BehaviourOptions) {
    this.#catalogue = catalogue;
    this.#options = options;
  }

  newUserState(user: SimUser): UserState {
    return {
      user,
      rng: new Random(user.eventSeed),
      played: user.initiallyPlayed,
      library: new Int32Array(LIBRARY_SIZE),
      libraryCount: 0,
      libraryNext: 0,
    };
  }

  /**
   * Appends the events of one session starting at `startMs` to `out` (in time order, none before
   * `startMs` nor at or after `endMs`; a clicked search and its play are never split by `endMs`)
   * and returns when the session ended.
   */
  session(state: UserState, startMs: number, endMs: number, out: EventRecord[]): number {
    this.#state = state;
    this.#rng = state.rng;
    this.#out = out;
    this.#time = startMs;
    this.#endMs = endMs;
    this.#recent.fill(-1);
    this.#recentNext = 0;

    const genre = this.#sessionGenre();
    if (this.#catalogue.genres[genre]!.kind === 'ITEM_KIND_TRACK') this.#musicSession(genre);
    else this.#spokenSession(genre);
    return this.#time;
  }

  // ---- music ------------------------------------------------------------------------------

  #musicSession(startGenre: number): void {
    const rng = this.#rng;
    const catalogue = this.#catalogue;
    let genre = startGenre;
    let context: PlayContextName = rng.pickWeighted(musicStarts, musicStartWeights);
    if (context === Context.library && this.#state.libraryCount < 5) context = Context.home;

    let current = -1; // the item playing now
    let previous = -1;
    let next = -1; // an item already decided (search click, skip back, album order)
    let nextContext: PlayContextName = context;
    let artist = -1; // the artist of an artist/album context
    let album = -1;
    let albumPosition = 0;

    if (context === Context.search) {
      const clicked = this.#search(genre);
      if (clicked < 0) context = Context.home;
      else if (catalogue.items[clicked]!.kind !== 'ITEM_KIND_TRACK') {
        this.#playSpoken(clicked, Context.search, true);
        return;
      } else {
        next = clicked;
        nextContext = Context.search;
        context = rng.chance(0.5) ? Context.artist : Context.radio;
        artist = catalogue.items[clicked]!.artistIndex;
      }
    } else if (context === Context.album || context === Context.artist) {
      artist = this.#chooseArtist(genre);
      if (context === Context.album) {
        const albums = catalogue.artists[artist]!.albums;
        album = albums[rng.int(albums.length)]!;
      }
    } else if (context === Context.radio) {
      next = this.#chooseFromGenres(genre, -1, Context.radio);
    }

    const plays = Math.min(MAX_PLAYS_PER_SESSION, rng.geometric(this.#state.user.playsPerSession));
    for (let step = 0; step < plays; step++) {
      if (this.#time >= this.#endMs) return;
      if (next < 0 && rng.chance(this.#options.searchRate)) {
        const searchGenre = current >= 0 ? catalogue.items[current]!.genreIndex : genre;
        const clicked = this.#search(searchGenre);
        if (clicked >= 0) {
          next = clicked;
          nextContext = Context.search;
          const item = catalogue.items[clicked]!;
          if (item.kind !== 'ITEM_KIND_TRACK') {
            this.#playSpoken(clicked, Context.search, true);
            return; // a podcast or book found by search takes over the session
          }
          genre = item.genreIndex;
          artist = item.artistIndex;
          album = -1;
          context = rng.chance(0.5) ? Context.artist : Context.radio;
        }
      }

      let item: number;
      let playContext: PlayContextName = context;
      if (next >= 0) {
        item = next;
        playContext = nextContext;
        next = -1;
        nextContext = context;
      } else if (album >= 0) {
        const tracks = catalogue.albums[album]!.items;
        if (albumPosition < tracks.length) item = tracks[albumPosition++]!;
        else {
          // Album over: autoplay continues as radio from the last track.
          album = -1;
          context = Context.radio;
          playContext = Context.radio;
          item = this.#chooseFromGenres(genre, current, Context.radio);
        }
      } else if (context === Context.artist && artist >= 0) {
        item = this.#chooseFromArtist(artist);
      } else if (context === Context.library) {
        item = this.#chooseFromLibrary(genre);
      } else {
        item = this.#chooseFromGenres(genre, current, context);
      }

      const last = step === plays - 1;
      const reason = this.#playMusic(item, playContext, last);
      if (reason === null) return; // ran past the end of the simulated span
      previous = current;
      current = item;
      const played = catalogue.items[item]!;
      // Radio and home drift: the session follows what the user keeps listening to.
      if (reason === 'END_REASON_COMPLETED' && (context === Context.radio || context === Context.home)) genre = played.genreIndex;
      if (reason === 'END_REASON_SKIPPED_BACKWARD' && previous >= 0) {
        next = previous; // back to the previous item, in the session's context (a search play follows only a search)
        nextContext = context;
      }
      if (reason === 'END_REASON_SKIPPED_FORWARD' && rng.chance(0.03)) return; // fed up
      if (reason === 'END_REASON_USER_STOPPED') return;
    }
  }

  /** Emits one music play; returns its end reason, or null when it would start after the end. */
  #playMusic(item: number, context: PlayContextName, lastOfSession: boolean): EndReasonName | null {
    const rng = this.#rng;
    const it = this.#catalogue.items[item]!;
    const affinity = this.#affinity(item);
    const base = skipBase[context];
    // Logistic in affinity, centred inside the taste: most candidates are from the user's genres
    // (affinity 0.6–0.9), so skips mostly tell apart artists within a genre; off-taste items
    // (affinity < 0.4) are skipped most of the time.
    const misfit = 1 / (1 + Math.exp((affinity - 0.6) * 10));
    const skip = base + (1 - base) * 0.85 * misfit;

    let reason: EndReasonName;
    let msPlayed: number;
    if (rng.chance(0.002)) {
      reason = 'END_REASON_ERROR';
      msPlayed = rng.int(5000);
    } else if (rng.chance(skip)) {
      reason = rng.chance(0.07) ? 'END_REASON_SKIPPED_BACKWARD' : 'END_REASON_SKIPPED_FORWARD';
      msPlayed = rng.chance(0.5) ? rng.intBetween(500, 8000) : rng.intBetween(8000, 29_999);
    } else if (lastOfSession && rng.chance(0.5)) {
      reason = 'END_REASON_USER_STOPPED';
      msPlayed = Math.floor(it.durationMs * rng.range(0.1, 0.95));
    } else {
      reason = 'END_REASON_COMPLETED';
      msPlayed = it.durationMs;
    }
    if (!this.#emitPlay(it, context, msPlayed, reason)) return null;
    // Gapless-ish autoplay after a completion; a moment's fiddling after a skip.
    this.#time += msPlayed + (reason === 'END_REASON_COMPLETED' ? rng.intBetween(50, 1500) : rng.intBetween(300, 2500));
    if (reason === 'END_REASON_COMPLETED' && affinity > 0.45 && rng.chance(0.25)) this.#addToLibrary(item);
    return reason;
  }

  // ---- podcasts and audiobooks --------------------------------------------------------------

  #spokenSession(genre: number): void {
    const rng = this.#rng;
    if (rng.chance(0.15)) {
      const clicked = this.#search(genre);
      if (clicked >= 0) this.#playSpoken(clicked, Context.search, false);
      return;
    }
    const show = this.#chooseArtist(genre);
    const items = this.#catalogue.artists[show]!.items;
    // Episodes: mostly the newest (most popular) one. Chapters: wherever the sampler lands.
    const first = rng.chance(0.6) ? items[0]! : items[this.#catalogue.artists[show]!.itemSampler.sample(rng)]!;
    this.#playSpoken(first, rng.chance(0.5) ? Context.home : Context.library, false);
  }

  /** Plays a spoken item, then maybe the next episodes/chapters of the same show/book. */
  #playSpoken(first: number, context: PlayContextName, afterSearch: boolean): void {
    const rng = this.#rng;
    const catalogue = this.#catalogue;
    let item = first;
    let playContext = context;
    const more = rng.intBetween(0, 2);
    for (let k = 0; k <= more; k++) {
      const it = catalogue.items[item]!;
      const affinity = this.#affinity(item);
      const skip = (afterSearch && k === 0 ? 0.02 : 0.05) + 0.6 / (1 + Math.exp((affinity - 0.2) * 9));
      let reason: EndReasonName;
      let msPlayed: number;
      if (rng.chance(skip)) {
        reason = 'END_REASON_SKIPPED_FORWARD';
        msPlayed = rng.intBetween(1000, 29_999);
      } else if (rng.chance(0.4)) {
        reason = 'END_REASON_USER_STOPPED';
        msPlayed = Math.floor(it.durationMs * rng.range(0.05, 0.95));
      } else {
        reason = 'END_REASON_COMPLETED';
        msPlayed = it.durationMs;
      }
      if (!this.#emitPlay(it, playContext, msPlayed, reason)) return;
      this.#time += msPlayed + rng.intBetween(500, 4000);
      if (reason === 'END_REASON_USER_STOPPED') return;
      if (reason === 'END_REASON_COMPLETED' && rng.chance(0.3)) this.#addToLibrary(item);
      // Next: the following chapter of a book; for a show, the next older episode.
      const album = catalogue.albums[it.albumIndex]!.items;
      const position = album.indexOf(item);
      const following = it.kind === 'ITEM_KIND_AUDIOBOOK_CHAPTER' ? album[position + 1] : album[position - 1];
      if (following === undefined) return;
      item = following;
      playContext = it.kind === 'ITEM_KIND_AUDIOBOOK_CHAPTER' ? Context.album : Context.library;
    }
  }

  // ---- search -----------------------------------------------------------------------------

  /**
   * Emits a search (and, if the user clicks, nothing else: the caller plays the click next with
   * PLAY_CONTEXT_SEARCH). Returns the clicked item, or -1. Searches are where hidden tastes show
   * first: when the user has a taste their plays don't show yet, searches often aim at it.
   */
  #search(sessionGenre: number): number {
    const rng = this.#rng;
    const catalogue = this.#catalogue;
    const state = this.#state;
    const tastes = state.user.tastes;

    let genre = sessionGenre;
    let reveals = -1;
    const hidden = tastes.filter((_, i) => (state.played & (1 << i)) === 0);
    if (hidden.length > 0 && rng.chance(0.5)) {
      const target = rng.pickWeighted(hidden, hidden.map((t) => t.weight));
      genre = target.genreIndex;
      reveals = tastes.indexOf(target);
    } else if (rng.chance(0.4)) {
      genre = rng.pickWeighted(tastes, tastes.map((t) => t.weight)).genreIndex;
    } else if (rng.chance(0.05)) {
      genre = rng.int(catalogue.genres.length); // curiosity
    }

    const g = catalogue.genres[genre]!;
    let text: string;
    let target: number;
    const r = rng.float();
    if (g.kind === 'ITEM_KIND_TRACK' && r < 0.3) {
      target = this.#chooseFromGenre(genre, 6);
      const item = catalogue.items[target]!;
      text = rng.chance(0.2) ? `${item.title} ${item.artist}` : item.title;
    } else if (r < 0.8) {
      const artist = catalogue.artists[this.#chooseArtist(genre)]!;
      target = rng.chance(0.7) ? artist.items[0]! : artist.items[artist.itemSampler.sample(rng)]!;
      const item = catalogue.items[target]!;
      text = item.kind === 'ITEM_KIND_AUDIOBOOK_CHAPTER' && rng.chance(0.5) ? item.album : artist.name;
      if (item.kind === 'ITEM_KIND_AUDIOBOOK_CHAPTER') target = catalogue.albums[item.albumIndex]!.items[0]!; // start the book
    } else {
      target = this.#chooseFromGenre(genre, 6);
      text = genreQuery(rng, g.name, g.kind);
    }

    const typed = typedQuery(rng, text);
    const queryTime = this.#time + rng.intBetween(1500, 12_000);
    let clicked = !rng.chance(typed.sloppy ? 0.45 : 0.17);
    let clickTime = queryTime + rng.intBetween(2000, 20_000);
    if (clickTime >= this.#endMs) {
      this.#time = this.#endMs; // the pair (search, clicked play) is atomic: stop here
      return -1;
    }
    this.#emitSearch(typed.query, queryTime, clicked ? catalogue.items[target]! : undefined);
    this.#time = clicked ? clickTime : queryTime + rng.intBetween(3000, 30_000);
    if (!clicked && rng.chance(0.4)) {
      // Nothing useful came back: try again, carefully this time.
      const retry = typedQuery(rng, text, true);
      const retryTime = this.#time;
      clicked = rng.chance(0.9);
      clickTime = retryTime + rng.intBetween(2000, 15_000);
      if (clickTime >= this.#endMs) {
        this.#time = this.#endMs;
        return -1;
      }
      this.#emitSearch(retry.query, retryTime, clicked ? catalogue.items[target]! : undefined);
      this.#time = clicked ? clickTime : retryTime + rng.intBetween(3000, 30_000);
    }
    if (!clicked) return -1;
    if (reveals >= 0) state.played |= 1 << reveals;
    return target;
  }

  // ---- choosing items -----------------------------------------------------------------------

  /** The session's starting genre: one of the tastes the user's plays show, now and then a neighbour. */
  #sessionGenre(): number {
    const rng = this.#rng;
    const { tastes } = this.#state.user;
    const shown = tastes.filter((_, i) => (this.#state.played & (1 << i)) !== 0);
    const taste = rng.pickWeighted(shown, shown.map((t) => t.weight));
    const genre = this.#catalogue.genres[taste.genreIndex]!;
    if (genre.neighbours.length > 0 && rng.chance(0.08)) return rng.pick(genre.neighbours);
    return genre.index;
  }

  /** An artist of the genre: a few popular ones, the best fit by softmax. */
  #chooseArtist(genre: number): number {
    const g = this.#catalogue.genres[genre]!;
    this.#candidateCount = 0;
    for (let k = 0; k < 5; k++) {
      const artist = this.#catalogue.artists[g.artists[g.artistSampler.sample(this.#rng)]!]!;
      this.#candidates[this.#candidateCount++] = artist.items[0]!;
    }
    return this.#catalogue.items[this.#softmaxPick(-1, 0)]!.artistIndex;
  }

  /** One item of the genre by popularity then taste (search targets). */
  #chooseFromGenre(genre: number, count: number): number {
    this.#candidateCount = 0;
    this.#addFromGenre(genre, count);
    return this.#softmaxPick(-1, 0);
  }

  /** The next item in a playlist/radio/home context. */
  #chooseFromGenres(genre: number, current: number, context: PlayContextName): number {
    const catalogue = this.#catalogue;
    const rng = this.#rng;
    const g = catalogue.genres[genre]!;
    this.#candidateCount = 0;
    const currentItem = current >= 0 ? catalogue.items[current] : undefined;
    if (context === Context.radio && currentItem !== undefined) {
      this.#addFromArtist(currentItem.artistIndex, 4);
      this.#addFromGenre(currentItem.genreIndex, 12);
      if (g.neighbours.length > 0) this.#addFromGenre(rng.pick(g.neighbours), 6);
    } else if (context === Context.home) {
      const { tastes } = this.#state.user;
      for (let i = 0; i < tastes.length; i++) {
        const taste = tastes[i]!;
        if ((this.#state.played & (1 << i)) === 0) continue;
        if (catalogue.genres[taste.genreIndex]!.kind !== 'ITEM_KIND_TRACK') continue;
        this.#addFromGenre(taste.genreIndex, Math.max(2, Math.round(16 * taste.weight)));
      }
      this.#addFromGenre(genre, 4);
      for (let k = 0; k < 4; k++) this.#addCandidate(catalogue.popularTracks[catalogue.popularTrackSampler.sample(rng)]!);
      this.#addFromLibrary(3);
    } else {
      this.#addFromGenre(genre, 14);
      if (g.neighbours.length > 0) this.#addFromGenre(rng.pick(g.neighbours), 5);
      if (currentItem !== undefined) this.#addFromArtist(currentItem.artistIndex, 2);
    }
    return this.#softmaxPick(currentItem?.artistIndex ?? -1, sameArtistBonus[context]);
  }

  #chooseFromArtist(artist: number): number {
    this.#candidateCount = 0;
    this.#addFromArtist(artist, 10);
    if (this.#candidateCount === 0) this.#addFromGenre(this.#catalogue.artists[artist]!.genreIndex, 8);
    return this.#softmaxPick(-1, 0);
  }

  #chooseFromLibrary(genre: number): number {
    this.#candidateCount = 0;
    this.#addFromLibrary(10);
    this.#addFromGenre(genre, 3);
    return this.#softmaxPick(-1, 0);
  }

  #addFromGenre(genre: number, count: number): void {
    const g = this.#catalogue.genres[genre]!;
    for (let k = 0; k < count; k++) this.#addCandidate(g.items[g.itemSampler.sample(this.#rng)]!);
  }

  #addFromArtist(artist: number, count: number): void {
    const a = this.#catalogue.artists[artist]!;
    for (let k = 0; k < count; k++) this.#addCandidate(a.items[a.itemSampler.sample(this.#rng)]!);
  }

  #addFromLibrary(count: number): void {
    const state = this.#state;
    if (state.libraryCount === 0) return;
    for (let k = 0; k < count; k++) {
      const item = state.library[this.#rng.int(state.libraryCount)]!;
      if (this.#catalogue.items[item]!.kind === 'ITEM_KIND_TRACK') this.#addCandidate(item);
    }
  }

  /** Adds a candidate unless it was played in the last few plays (no immediate repeats). */
  #addCandidate(item: number): void {
    if (this.#candidateCount >= MAX_CANDIDATES) return;
    const recent = this.#recent;
    for (let i = 0; i < RECENT_SIZE; i++) if (recent[i] === item) return;
    this.#candidates[this.#candidateCount++] = item;
  }

  /** Softmax over affinity / temperature (+ a bonus for staying with `artist`); samples one candidate. */
  #softmaxPick(artist: number, artistBonus: number): number {
    const n = this.#candidateCount;
    const catalogue = this.#catalogue;
    if (n === 0) {
      // Everything was played just now: fall back to the charts.
      return catalogue.popularTracks[catalogue.popularTrackSampler.sample(this.#rng)]!;
    }
    const inverseTemperature = 1 / this.#options.temperature;
    const candidates = this.#candidates;
    const scores = this.#scores;
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const item = candidates[i]!;
      let score = this.#affinity(item) * inverseTemperature;
      if (artist >= 0 && catalogue.items[item]!.artistIndex === artist) score += artistBonus;
      scores[i] = score;
      if (score > max) max = score;
    }
    let total = 0;
    for (let i = 0; i < n; i++) {
      total += Math.exp(scores[i]! - max);
      scores[i] = total;
    }
    const target = this.#rng.float() * total;
    for (let i = 0; i < n; i++) if (scores[i]! > target) return candidates[i]!;
    return candidates[n - 1]!;
  }

  #affinity(item: number): number {
    return dotRow(this.#state.user.vector, this.#catalogue.vectors, item);
  }

  #addToLibrary(item: number): void {
    const state = this.#state;
    for (let i = 0; i < state.libraryCount; i++) if (state.library[i] === item) return;
    state.library[state.libraryNext] = item;
    state.libraryNext = (state.libraryNext + 1) % LIBRARY_SIZE;
    state.libraryCount = Math.min(LIBRARY_SIZE, state.libraryCount + 1);
  }

  // ---- output -------------------------------------------------------------------------------

  /** Returns false (and emits nothing) when the play would start at or after the end. */
  #emitPlay(item: CatalogueItem, context: PlayContextName, msPlayed: number, endReason: EndReasonName): boolean {
    if (this.#time >= this.#endMs) return false;
    this.#recent[this.#recentNext] = item.index;
    this.#recentNext = (this.#recentNext + 1) % RECENT_SIZE;
    // A taste shows in plays once the user plays its genre.
    const tastes = this.#state.user.tastes;
    for (let i = 0; i < tastes.length; i++) if (tastes[i]!.genreIndex === item.genreIndex) this.#state.played |= 1 << i;
    this.#out.push({
      kind: 'play',
      event: {
        userId: this.#state.user.userId,
        itemUri: item.uri,
        itemKind: item.kind,
        eventTimeMs: this.#time,
        msPlayed,
        itemDurationMs: item.durationMs,
        context,
        endReason,
      },
    });
    return true;
  }

  #emitSearch(query: string, timeMs: number, clicked: CatalogueItem | undefined): void {
    this.#out.push({
      kind: 'search',
      event: {
        userId: this.#state.user.userId,
        query,
        eventTimeMs: timeMs,
        clickedItemUri: clicked?.uri ?? '',
        clickedItemKind: clicked?.kind ?? 'ITEM_KIND_UNSPECIFIED',
      },
    });
  }
}

function genreQuery(rng: Random, genre: string, kind: ItemKind__Output): string {
  if (kind === 'ITEM_KIND_PODCAST_EPISODE') return rng.chance(0.6) ? `${genre} podcast` : genre;
  if (kind === 'ITEM_KIND_AUDIOBOOK_CHAPTER') return rng.chance(0.6) ? `${genre} audiobook` : genre;
  const r = rng.float();
  if (r < 0.4) return genre;
  if (r < 0.6) return `${genre} playlist`;
  if (r < 0.8) return `best ${genre}`;
  return `${genre} mix`;
}
