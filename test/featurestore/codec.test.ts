import test from 'ava';
import {
  decodeHighWater,
  decodeVector,
  decodeWindow,
  encodeHighWater,
  encodeVector,
  encodeWindow,
} from '../../featurestore/codec.js';
import { EventKinds, Streams, type WindowEvent } from '../../events/window-event.js';
import { TasteError } from '../../common/errors.js';
// The format-1 encoder exactly as it was, kept for the codec benchmark's baseline.
import { encodeWindowFixed } from '../../bench/lib/codec-alternatives.js';

const window: WindowEvent[] = [
  { eventTimeMs: 1_764_000_000_123, stream: Streams.PLAY, partition: 11, offset: 2 ** 40, itemId: 4999, kind: EventKinds.SKIPPED, queryTokens: [] },
  { eventTimeMs: 1_764_000_001_000, stream: Streams.SEARCH, partition: 0, offset: 0, itemId: 0, kind: EventKinds.SEARCH, queryTokens: [1, 65_535, 7] },
];

test('a window survives encode/decode exactly', (t) => {
  t.deepEqual(decodeWindow(encodeWindow(window, 8)), window);
  t.deepEqual(decodeWindow(encodeWindow([], 8)), []);
});

test('records are variable-length: a play takes 25 bytes, a search 25 + 2 per token', (t) => {
  t.is(encodeWindow([window[0]!], 8).length, 4 + 25);
  t.is(encodeWindow([window[1]!], 8).length, 4 + 25 + 3 * 2);
});

test('windows stored in format 1 (fixed records) still decode to the same events', (t) => {
  t.deepEqual(decodeWindow(encodeWindowFixed(window, 8)), window);
  t.throws(() => decodeWindow(encodeWindowFixed(window, 8).subarray(0, 60)), { instanceOf: TasteError, message: /corrupt/ });
});

test('a truncated, padded or foreign window is reported as corrupt, not misread', (t) => {
  const bytes = encodeWindow(window, 8);
  t.throws(() => decodeWindow(bytes.subarray(0, bytes.length - 1)), { instanceOf: TasteError, message: /corrupt/ });
  t.throws(() => decodeWindow(Buffer.concat([bytes, Buffer.alloc(2)])), { instanceOf: TasteError, message: /2 bytes after the last of 2 records/ });
  t.throws(() => decodeWindow(Buffer.from('{"json":true}')), { instanceOf: TasteError });
  const tooManyTokens = Buffer.from(bytes);
  tooManyTokens.writeUInt8(9, 4 + 25 + 24); // the search record's token count, above Q = 8
  t.throws(() => decodeWindow(tooManyTokens), { instanceOf: TasteError, message: /claims 9 query tokens/ });
});

test('tokens beyond Q are not stored', (t) => {
  const search = { ...window[1]!, queryTokens: [1, 2, 3, 4] };
  t.deepEqual(decodeWindow(encodeWindow([search], 2))[0]?.queryTokens, [1, 2]);
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

test('a value a field cannot hold is refused, never wrapped: a u16 token, 65,536 events, a partition past 65,535', (t) => {
  const search = (token: number, partition = 0): WindowEvent => ({ eventTimeMs: 1, stream: Streams.SEARCH, partition, offset: 1, itemId: 2, kind: EventKinds.SEARCH, queryTokens: [token] });
  t.is(decodeWindow(encodeWindow([search(65_535)], 8))[0]!.queryTokens[0], 65_535);
  t.throws(() => encodeWindow([search(65_536)], 8), { instanceOf: TasteError, message: /query token 65536 needs a store for more than 65536 query buckets/ });
  t.throws(() => encodeWindow(Array.from({ length: 65_536 }, () => search(1)), 8), { message: /65536 events is over the 65535/ });
  t.throws(() => encodeWindow([search(1, 70_000)], 8), { message: /partition 70000/ });
});

test('with 4-byte tokens (models of more than 65,536 query buckets) every id up to 2^24 round-trips', (t) => {
  const tokens = [0, 65_535, 65_536, 1_000_003, (1 << 24) - 1];
  const window: WindowEvent[] = [{ eventTimeMs: 5, stream: Streams.SEARCH, partition: 3, offset: 9, itemId: 2, kind: EventKinds.SEARCH, queryTokens: tokens }];
  const encoded = encodeWindow(window, 8, 4);
  t.is(encoded.length, 4 + 25 + 4 * tokens.length);
  t.deepEqual(decodeWindow(encoded), window);
});
