import test from 'ava';
import { EventStats } from '../../simulator/stats.js';
import type { EventRecord } from '../../events/event-record.js';
import { createWorld, simulateEvents } from '../../simulator/world.js';
import { SimulatorError } from '../../simulator/errors.js';

const DAY_MS = 86_400_000;
// One shared world of 2000 users over a week (~120k events): the realism checks need volume.
const world = createWorld({ users: 2000, seed: 7 });
const events: EventRecord[] = [...world.events()];
const stats = new EventStats({ perUser: true });
for (const e of events) stats.add(e);

const byUser = new Map<string, EventRecord[]>();
for (const e of events) {
  const list = byUser.get(e.event.userId) ?? [];
  list.push(e);
  byUser.set(e.event.userId, list);
}

test('deterministic: same seed, same events; another seed, other events', (t) => {
  const a = [...simulateEvents({ users: 50, seed: 11, durationMs: 2 * DAY_MS })];
  const b = [...simulateEvents({ users: 50, seed: 11, durationMs: 2 * DAY_MS })];
  const c = [...simulateEvents({ users: 50, seed: 12, durationMs: 2 * DAY_MS })];
  t.true(a.length > 100);
  t.deepEqual(a, b);
  t.notDeepEqual(a.slice(0, 100), c.slice(0, 100));
  t.deepEqual([...world.events()].slice(0, 1000), events.slice(0, 1000), 'events() replays the same stream');
});

test("a user's events do not depend on how many other users there are", (t) => {
  const of = (users: number): EventRecord[] =>
    [...simulateEvents({ users, seed: 11, durationMs: 3 * DAY_MS })].filter((e) => e.event.userId === 'user-3');
  const few = of(10);
  t.true(few.length > 0);
  t.deepEqual(of(40), few);
});

test('events are in time order and inside the simulated span', (t) => {
  const start = world.options.startTimeMs;
  const end = start + world.options.durationMs;
  let previous = start;
  for (const e of events) {
    t.true(e.event.eventTimeMs >= previous, 'time order');
    previous = e.event.eventTimeMs;
  }
  t.true(events[0]!.event.eventTimeMs >= start && previous < end);
  t.true(stats.lastTimeMs - stats.firstTimeMs > 6 * DAY_MS, 'events span the week');
});

test('every play names a catalogue item, with its kind and duration; end reasons match ms played', (t) => {
  for (const e of events) {
    if (e.kind !== 'play') continue;
    const p = e.event;
    const item = world.catalogue.itemByUri(p.itemUri);
    if (item === undefined) return t.fail(`${p.itemUri} is not in the catalogue`);
    if (item.kind !== p.itemKind || item.durationMs !== p.itemDurationMs) return t.fail(`${p.itemUri}: kind/duration differ`);
    if (p.msPlayed > p.itemDurationMs) return t.fail(`${p.itemUri}: played ${p.msPlayed} of ${p.itemDurationMs} ms`);
    if (p.endReason === 'END_REASON_COMPLETED' && p.msPlayed !== p.itemDurationMs) return t.fail('completed but not played to the end');
    if (p.endReason.startsWith('END_REASON_SKIPPED') && p.msPlayed >= 30_000) return t.fail(`skipped after ${p.msPlayed} ms`);
    if (p.context === 'PLAY_CONTEXT_UNSPECIFIED' || p.endReason === 'END_REASON_UNSPECIFIED') return t.fail('unspecified enum');
  }
  t.pass();
});

test('realistic ratios: skips, completions, searches, clicks, item kinds', (t) => {
  t.true(stats.events > 80_000 && stats.events < 250_000, `${stats.events} events`);
  t.true(stats.skipRate > 0.15 && stats.skipRate < 0.4, `skip rate ${stats.skipRate}`);
  t.true(stats.completions / stats.plays > 0.5, `completion rate ${stats.completions / stats.plays}`);
  t.true(stats.userStops > 0);
  t.true(stats.searchShare > 0.02 && stats.searchShare < 0.12, `search share ${stats.searchShare}`);
  t.true(stats.clickedShare > 0.7 && stats.clickedShare < 0.9, `clicked share ${stats.clickedShare}`);
  const tracks = stats.byItemKind.get('ITEM_KIND_TRACK') ?? 0;
  t.true(tracks / stats.plays > 0.9);
  t.true((stats.byItemKind.get('ITEM_KIND_PODCAST_EPISODE') ?? 0) > 0 && (stats.byItemKind.get('ITEM_KIND_AUDIOBOOK_CHAPTER') ?? 0) > 0);
  for (const context of ['HOME', 'PLAYLIST', 'RADIO', 'ALBUM', 'ARTIST', 'SEARCH', 'LIBRARY']) {
    t.true((stats.byContext.get(`PLAY_CONTEXT_${context}`) ?? 0) > 0.01 * stats.plays, context);
  }
});

test('activity is Zipf-like: the top 10% of users produce a large share', (t) => {
  const share = stats.topUserShare(0.1, world.users.length);
  t.true(share > 0.35, `top 10% share ${share}`);
  const counts = [...stats.perUser.values()].sort((a, b) => a - b);
  const median = counts[Math.floor(counts.length / 2)]!;
  t.true(counts[counts.length - 1]! > 10 * median, `max ${counts[counts.length - 1]} vs median ${median}`);
});

test('a clicked search is followed by a play of the clicked item from PLAY_CONTEXT_SEARCH', (t) => {
  let clicked = 0;
  for (const list of byUser.values()) {
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!;
      if (e.kind === 'play' && e.event.context === 'PLAY_CONTEXT_SEARCH') {
        const before = list[i - 1];
        if (before?.kind !== 'search' || before.event.clickedItemUri !== e.event.itemUri) return t.fail('search play without its search');
      }
      if (e.kind !== 'search' || e.event.clickedItemUri === '') continue;
      clicked++;
      const next = list[i + 1];
      if (next?.kind !== 'play') return t.fail(`search by ${e.event.userId} at ${e.event.eventTimeMs} not followed by a play`);
      t.is(next.event.itemUri, e.event.clickedItemUri);
      t.is(next.event.context, 'PLAY_CONTEXT_SEARCH');
      t.is(next.event.itemKind, e.event.clickedItemKind);
      t.true(next.event.eventTimeMs > e.event.eventTimeMs);
    }
  }
  t.true(clicked > 1000);
});

test('sequences have structure: artist continuity, genre coherence, plays within the taste', (t) => {
  let pairs = 0;
  let sameArtist = 0;
  let sameGenre = 0;
  let plays = 0;
  let inTaste = 0;
  const users = new Map(world.users.map((u) => [u.userId, u]));
  for (const [userId, list] of byUser) {
    const tastes = new Set(users.get(userId)!.tastes.map((x) => x.genre));
    let previous: string | undefined;
    for (const e of list) {
      if (e.kind !== 'play') continue;
      const item = world.catalogue.itemByUri(e.event.itemUri)!;
      plays++;
      if (tastes.has(item.genre)) inTaste++;
      if (previous !== undefined) {
        const before = world.catalogue.itemByUri(previous)!;
        pairs++;
        if (before.artist === item.artist) sameArtist++;
        if (before.genre === item.genre) sameGenre++;
      }
      previous = e.event.itemUri;
    }
  }
  t.true(sameArtist / pairs > 0.2 && sameArtist / pairs < 0.7, `same artist ${sameArtist / pairs}`);
  t.true(sameGenre / pairs > 0.7 && sameGenre / pairs < 0.98, `same genre ${sameGenre / pairs}`);
  t.true(inTaste / plays > 0.8, `in taste ${inTaste / plays}`);
  t.true(inTaste / plays < 0.99, 'some exploration outside the taste');
});

test('skips are likelier for items that fit the taste badly', (t) => {
  const users = new Map(world.users.map((u) => [u.userId, u]));
  const buckets = { fit: [0, 0], misfit: [0, 0] };
  for (const e of events) {
    if (e.kind !== 'play' || e.event.itemKind !== 'ITEM_KIND_TRACK') continue;
    const user = users.get(e.event.userId)!;
    const item = world.catalogue.itemByUri(e.event.itemUri)!;
    const affinity = user.vector.reduce((s, x, i) => s + x * item.vector[i]!, 0);
    const bucket = affinity > 0.7 ? buckets.fit : affinity < 0.4 ? buckets.misfit : undefined;
    if (bucket === undefined) continue;
    bucket[0]! += 1;
    if (e.event.endReason.startsWith('END_REASON_SKIPPED')) bucket[1]! += 1;
  }
  const fit = buckets.fit[1]! / buckets.fit[0]!;
  const misfit = buckets.misfit[1]! / buckets.misfit[0]!;
  t.true(misfit > 2 * fit, `skip rate ${misfit} for misfits vs ${fit} for good fits`);
});

test('searches reveal tastes that plays have not shown yet', (t) => {
  // A search whose click is in one of the user's taste genres that none of the user's earlier
  // plays was in: the signal a model can only get from search events.
  let revealing = 0;
  let laterPlayed = 0;
  for (const user of world.users) {
    const list = byUser.get(user.userId) ?? [];
    const tastes = new Set(user.tastes.map((x) => x.genre));
    const seen = new Set<string>();
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!;
      if (e.kind === 'play') {
        seen.add(world.catalogue.itemByUri(e.event.itemUri)!.genre);
        continue;
      }
      if (e.event.clickedItemUri === '') continue;
      const genre = world.catalogue.itemByUri(e.event.clickedItemUri)!.genre;
      if (!tastes.has(genre) || seen.has(genre)) continue;
      revealing++;
      const laterPlays = list.slice(i + 2).filter((x) => x.kind === 'play' && world.catalogue.itemByUri(x.event.itemUri)!.genre === genre);
      if (laterPlays.length > 0) laterPlayed++;
    }
  }
  t.true(revealing > 100, `${revealing} revealing searches`);
  t.true(laterPlayed / revealing > 0.3, `${laterPlayed} of ${revealing} revealed genres played later`);
});

test('search queries look like what people type: names, titles, genres, some typos', (t) => {
  const searches = events.filter((e): e is Extract<EventRecord, { kind: 'search' }> => e.kind === 'search');
  const artists = new Set(world.catalogue.artists.map((a) => a.name.toLowerCase()));
  const exactArtist = searches.filter((s) => artists.has(s.event.query.toLowerCase())).length;
  const genres = searches.filter((s) => world.catalogue.genres.some((g) => s.event.query.toLowerCase().includes(g.name))).length;
  t.true(exactArtist / searches.length > 0.2, `artist queries ${exactArtist / searches.length}`);
  t.true(genres / searches.length > 0.05, `genre queries ${genres / searches.length}`);
  t.true(searches.every((s) => s.event.query.length >= 2));
  t.true(searches.some((s) => s.event.query === s.event.query.toLowerCase() && /[a-z]/.test(s.event.query)));
  t.true(searches.every((s) => (s.event.clickedItemUri === '') === (s.event.clickedItemKind === 'ITEM_KIND_UNSPECIFIED')));
});

test('options are validated with errors that name the option', (t) => {
  t.throws(() => createWorld({ users: -1 }), { instanceOf: SimulatorError, message: /option users must be an integer/ });
  t.throws(() => createWorld({ searchRate: 2 }), { message: /option searchRate/ });
  t.throws(() => createWorld({ seed: '' }), { message: /option seed must be an integer or a non-empty string/ });
});

test('an endless stream (durationMs: Infinity) can be pulled lazily', (t) => {
  const stream = simulateEvents({ users: 20, seed: 3, durationMs: Number.POSITIVE_INFINITY });
  let n = 0;
  for (const e of stream) {
    t.truthy(e.event.userId);
    if (++n === 5000) break;
  }
  t.is(n, 5000);
});
