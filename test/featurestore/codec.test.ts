import test from 'ava';
import {
  decodeHighWater,
  decodeVector,
  decodeWindow,
  encodeHighWater,
  encodeVector,
  encodeWindow,
} from '../../featurestore/codec.js';
import { EventKinds, Streams, type WindowEvent } from '../../model/features.js';
import { TasteError } from '../../common/errors.js';

const window: WindowEvent[] = [
  { eventTimeMs: 1_764_000_000_123, stream: Streams.PLAY, partition: 11, offset: 2 ** 40, itemId: 4999, kind: EventKinds.SKIPPED, queryTokens: [] },
  { eventTimeMs: 1_764_000_001_000, stream: Streams.SEARCH, partition: 0, offset: 0, itemId: 0, kind: EventKinds.SEARCH, queryTokens: [1, 65_535, 7] },
];

test('a window survives encode/decode exactly', (t) => {
  t.deepEqual(decodeWindow(encodeWindow(window, 8)), window);
  t.deepEqual(decodeWindow(encodeWindow([], 8)), []);
});

test('a truncated or foreign window is reported as corrupt, not misread', (t) => {
  const bytes = encodeWindow(window, 8);
  t.throws(() => decodeWindow(bytes.subarray(0, bytes.length - 1)), { instanceOf: TasteError, message: /corrupt/ });
  t.throws(() => decodeWindow(Buffer.from('{"json":true}')), { instanceOf: TasteError });
});

test('high-water marks round-trip, topic names with dots included', (t) => {
  const marks = new Map([
    ['taste.plays.v1:3', 1234],
    ['taste.searches.v1:0', 0],
  ]);
  t.deepEqual(decodeHighWater(encodeHighWater(marks)), marks);
  t.deepEqual(decodeHighWater(''), new Map());
});

test('vectors are raw little-endian float32', (t) => {
  const vector = new Float32Array([0.5, -1, 3.25]);
  const bytes = encodeVector(vector);
  t.is(bytes.length, 12);
  t.is(bytes.readFloatLE(4), -1);
  t.deepEqual(decodeVector(bytes), vector);
});
