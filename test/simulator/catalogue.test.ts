import test from 'ava';
import { createCatalogue } from '../../simulator/catalogue.js';
import { SimulatorError } from '../../simulator/errors.js';

const catalogue = createCatalogue();

test('default catalogue: 5000 items of three kinds with their URI schemes', (t) => {
  t.is(catalogue.items.length, 5000);
  const byKind = new Map<string, number>();
  for (const item of catalogue.items) byKind.set(item.kind, (byKind.get(item.kind) ?? 0) + 1);
  t.true(byKind.get('ITEM_KIND_TRACK')! > 4000);
  t.true(byKind.get('ITEM_KIND_PODCAST_EPISODE')! > 100);
  t.true(byKind.get('ITEM_KIND_AUDIOBOOK_CHAPTER')! > 100);
  const scheme = { ITEM_KIND_TRACK: /^taste:track:\d+$/, ITEM_KIND_PODCAST_EPISODE: /^taste:episode:\d+$/, ITEM_KIND_AUDIOBOOK_CHAPTER: /^taste:chapter:\d+$/ };
  for (const item of catalogue.items) t.regex(item.uri, scheme[item.kind as keyof typeof scheme]);
  t.is(new Set(catalogue.items.map((i) => i.uri)).size, catalogue.items.length);
});

test('16 named music genres, each with artists and albums; names and titles are non-empty', (t) => {
  const music = catalogue.genres.filter((g) => g.kind === 'ITEM_KIND_TRACK');
  t.is(music.length, 16);
  t.true(music.some((g) => g.name === 'indie rock') && music.some((g) => g.name === 'k-pop') && music.some((g) => g.name === 'jazz'));
  for (const genre of catalogue.genres) {
    t.true(genre.items.length > 0 && genre.artists.length > 0, genre.name);
    t.true(genre.neighbours.every((n) => catalogue.genres[n]!.kind === genre.kind));
  }
  t.is(new Set(catalogue.artists.map((a) => a.name)).size, catalogue.artists.length, 'artist names are unique');
  for (const item of catalogue.items) {
    t.true(item.artist.length > 0 && item.title.length > 0 && item.album.length > 0);
    t.true(item.durationMs >= 75_000, `${item.uri} lasts ${item.durationMs} ms`);
    t.is(catalogue.itemByUri(item.uri), item);
  }
});

test('popularity is in (0, 1] and Zipf-like within a genre', (t) => {
  for (const genre of catalogue.genres.filter((g) => g.items.length >= 100)) {
    const popularity = Array.from(genre.items, (i) => catalogue.items[i]!.popularity);
    t.is(popularity[0], 1);
    t.true(popularity.every((p, i) => p > 0 && p <= 1 && (i === 0 || p <= popularity[i - 1]!)));
    const total = popularity.reduce((a, b) => a + b, 0);
    const top = popularity.slice(0, Math.ceil(popularity.length / 10)).reduce((a, b) => a + b, 0);
    t.true(top / total > 0.3, `${genre.name}: top 10% hold ${(top / total).toFixed(2)}`);
  }
});

test('latent vectors: unit length, closer within an artist than across genres', (t) => {
  const dot = (a: Float32Array, b: Float32Array): number => a.reduce((s, x, i) => s + x * b[i]!, 0);
  for (const item of catalogue.items.slice(0, 200)) t.true(Math.abs(dot(item.vector, item.vector) - 1) < 1e-4);
  let sameArtist = 0;
  let otherGenre = 0;
  let n = 0;
  for (const artist of catalogue.artists.filter((a) => a.items.length >= 2).slice(0, 100)) {
    const a = catalogue.items[artist.items[0]!]!;
    const b = catalogue.items[artist.items[1]!]!;
    const other = catalogue.items.find((i) => i.genre !== a.genre && i.kind === 'ITEM_KIND_TRACK')!;
    sameArtist += dot(a.vector, b.vector);
    otherGenre += dot(a.vector, other.vector);
    n++;
  }
  t.true(sameArtist / n > 0.7, `same artist ${sameArtist / n}`);
  t.true(otherGenre / n < 0.4, `other genre ${otherGenre / n}`);
});

test('deterministic: same options, same catalogue; another seed, another one', (t) => {
  const again = createCatalogue({ seed: 1 });
  t.deepEqual(
    again.items.map((i) => [i.uri, i.artist, i.title, i.durationMs]),
    catalogue.items.map((i) => [i.uri, i.artist, i.title, i.durationMs]),
  );
  const other = createCatalogue({ seed: 2 });
  t.notDeepEqual(other.items.slice(0, 50).map((i) => i.title), catalogue.items.slice(0, 50).map((i) => i.title));
});

test('sizes follow the options; bad options name the option', (t) => {
  const small = createCatalogue({ items: 300, podcastShare: 0, audiobookShare: 0 });
  t.is(small.items.length, 300);
  t.true(small.items.every((i) => i.kind === 'ITEM_KIND_TRACK'));
  t.is(small.genres.length, 16);
  const error = t.throws(() => createCatalogue({ items: 10 }), { instanceOf: SimulatorError });
  t.regex(error.message, /catalogue\.items must be an integer between 200/);
  t.throws(() => createCatalogue({ podcastShare: 2 }), { message: /catalogue\.podcastShare/ });
});
