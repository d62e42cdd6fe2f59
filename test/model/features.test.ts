import test from 'ava';
import {
  bitLength,
  buildSequenceBatch,
  EventKinds,
  fnv1a32,
  mergeWindow,
  playEventKind,
  Streams,
  timeBucket,
  tokenizeQuery,
  type WindowEvent,
} from '../../model/features.js';

function play(eventTimeMs: number, offset: number, itemId = 2): WindowEvent {
  return { eventTimeMs, stream: Streams.PLAY, partition: 0, offset, itemId, kind: EventKinds.PLAY, queryTokens: [] };
}

test('fnv1a32 matches the published FNV-1a test vectors', (t) => {
  const encode = (text: string) => new TextEncoder().encode(text);
  t.is(fnv1a32(encode('')), 0x811c9dc5);
  t.is(fnv1a32(encode('a')), 0xe40c292c);
  t.is(fnv1a32(encode('foobar')), 0xbf9cf968);
});

test('bitLength is exact beyond 32 bits', (t) => {
  t.deepEqual([0, 1, 2, 3, 4, 255, 256].map(bitLength), [0, 1, 2, 2, 3, 8, 9]);
  t.is(bitLength(2 ** 40), 41);
  t.is(bitLength(2 ** 40 - 1), 40);
});

test('time buckets are 1 + bitlen(seconds), clipped to 24', (t) => {
  t.is(timeBucket(0), 1);
  t.is(timeBucket(999), 1);
  t.is(timeBucket(1000), 2);
  t.is(timeBucket(-5000), 1);
  t.is(timeBucket(1e15), 24);
});

test('a play counts as completed, skipped or played by end reason and time played', (t) => {
  t.is(playEventKind('END_REASON_COMPLETED', 0, 0), EventKinds.COMPLETED);
  t.is(playEventKind('END_REASON_USER_STOPPED', 180_000, 200_000), EventKinds.COMPLETED);
  t.is(playEventKind('END_REASON_SKIPPED_FORWARD', 100_000, 200_000), EventKinds.SKIPPED);
  t.is(playEventKind('END_REASON_USER_STOPPED', 29_999, 200_000), EventKinds.SKIPPED);
  t.is(playEventKind('END_REASON_USER_STOPPED', 30_000, 200_000), EventKinds.PLAY);
  t.is(playEventKind('END_REASON_UNSPECIFIED', 60_000, 0), EventKinds.PLAY);
});

test('queries are NFKC-normalised, lowercased and split on letters and digits', (t) => {
  const ids = (query: string) => tokenizeQuery(query, 8, 4096);
  t.deepEqual(ids('Daft  Punk!'), ids('daft punk'));
  t.deepEqual(ids('ﬁne'), ids('fine'));
  t.deepEqual(ids('１２３'), ids('123'));
  t.deepEqual(ids('?!…'), []);
  t.is(ids('a b c d e f g h i j').length, 8);
  for (const id of ids('anything at all')) t.true(id >= 1 && id <= 4095);
});

test('mergeWindow keeps the newest events, whatever the arrival order', (t) => {
  const events = [5, 1, 4, 2, 3].map((time, index) => play(time * 1000, index));
  const forward = events.reduce<WindowEvent[]>((window, event) => mergeWindow(window, [event], 3), []);
  const backward = [...events].reverse().reduce<WindowEvent[]>((window, event) => mergeWindow(window, [event], 3), []);
  t.deepEqual(forward.map((event) => event.eventTimeMs), [3000, 4000, 5000]);
  t.deepEqual(backward, forward);
});

test('mergeWindow drops an event it already holds', (t) => {
  const window = mergeWindow([play(1000, 7)], [play(1000, 7), play(2000, 8)], 10);
  t.deepEqual(window.map((event) => event.offset), [7, 8]);
});

test('buildSequenceBatch left-pads to the longest window and fills every feature', (t) => {
  const search: WindowEvent = {
    eventTimeMs: 10_000,
    stream: Streams.SEARCH,
    partition: 0,
    offset: 3,
    itemId: 0,
    kind: EventKinds.SEARCH,
    queryTokens: [17, 42],
  };
  const batch = buildSequenceBatch([[play(0, 1, 5), play(4000, 2, 6), search], [play(0, 9, 7)]], 2);
  t.is(batch.batchSize, 2);
  t.is(batch.timeSteps, 3);
  t.deepEqual([...batch.itemIds], [5n, 6n, 0n, 0n, 0n, 7n]);
  t.deepEqual([...batch.eventKinds], [1n, 1n, 4n, 0n, 0n, 1n]);
  t.deepEqual([...batch.gapBuckets], [1n, 4n, 4n, 0n, 0n, 1n]);
  t.deepEqual([...batch.ageBuckets], [5n, 4n, 1n, 0n, 0n, 1n]);
  t.deepEqual([...batch.queryTokenIds], [0n, 0n, 0n, 0n, 17n, 42n, 0n, 0n, 0n, 0n, 0n, 0n]);
});
