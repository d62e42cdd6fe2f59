import test from 'ava';
import { bitLength, buildSequenceBatch, mergeWindow, timeBucket } from '../../model/features.js';
import { EventKinds, Streams, type WindowEvent } from '../../events/window-event.js';

function play(eventTimeMs: number, offset: number, itemId = 2): WindowEvent {
  return { eventTimeMs, stream: Streams.PLAY, partition: 0, offset, itemId, kind: EventKinds.PLAY, queryTokens: [] };
}

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
