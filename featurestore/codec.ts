import { ErrorCodes, TasteError } from '../common/errors.js';
import type { EventKind, Stream, WindowEvent } from '../events/window-event.js';

/**
 * Binary encodings of what the store keeps. Little-endian throughout; no JSON on the hot path.
 *
 * Window, format 2 (written for models of up to 65,536 query buckets): [u8 format=2][u8 Q][u16 count]
 * then count records of
 *   [f64 eventTimeMs][f64 offset][u32 itemId][u16 partition][u8 stream][u8 kind][u8 n][n x u16 token]
 * Plays have no tokens, so their records are 25 bytes.
 * Window, format 3 (written for models of more query buckets; the contract allows 2^24): as format 2
 * with u32 tokens. A u16 would wrap token ids, and serving would feed the model other queries
 * than the ones training saw.
 * Window, format 1 (still read; states written before format 2): fixed records of
 *   [f64 eventTimeMs][f64 offset][u32 itemId][u16 partition][u8 stream][u8 kind][Q x u16 token, 0-padded]
 */
const WINDOW_FORMAT_FIXED = 1;
const WINDOW_FORMAT = 2;
const WINDOW_FORMAT_WIDE = 3;
const HEADER_BYTES = 4;
const FIXED_RECORD_BYTES = 24;
/** Query buckets a u16 token holds; models with more get format 3. */
export const MAX_NARROW_QUERY_BUCKETS = 65_536;
const MAX_WINDOW_EVENTS = 0xffff;
const MAX_PARTITION = 0xffff;

/** Bytes per stored query token for a model of `queryBuckets` buckets. */
export function tokenBytesFor(queryBuckets: number): 2 | 4 {
  return queryBuckets <= MAX_NARROW_QUERY_BUCKETS ? 2 : 4;
}

/** Encodes a window; any value its fields cannot hold is refused, never wrapped. */
export function encodeWindow(window: readonly WindowEvent[], queryTokens: number, tokenBytes: 2 | 4 = 2): Buffer {
  if (window.length > MAX_WINDOW_EVENTS) throw unencodable(`${window.length} events is over the ${MAX_WINDOW_EVENTS} a window holds`);
  const tokenLimit = tokenBytes === 2 ? 0xffff : 0xffffffff;
  let bytes = HEADER_BYTES;
  for (const event of window) bytes += FIXED_RECORD_BYTES + 1 + tokenBytes * Math.min(event.queryTokens.length, queryTokens);
  const buffer = Buffer.allocUnsafe(bytes);
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  view.setUint8(0, tokenBytes === 2 ? WINDOW_FORMAT : WINDOW_FORMAT_WIDE);
  view.setUint8(1, queryTokens);
  view.setUint16(2, window.length, true);
  let at = HEADER_BYTES;
  for (const event of window) {
    if (event.partition > MAX_PARTITION) throw unencodable(`partition ${event.partition} is over the ${MAX_PARTITION} a window holds`);
    view.setFloat64(at, event.eventTimeMs, true);
    view.setFloat64(at + 8, event.offset, true);
    view.setUint32(at + 16, event.itemId, true);
    view.setUint16(at + 20, event.partition, true);
    view.setUint8(at + 22, event.stream);
    view.setUint8(at + 23, event.kind);
    const tokens = Math.min(event.queryTokens.length, queryTokens);
    view.setUint8(at + 24, tokens);
    at += FIXED_RECORD_BYTES + 1;
    for (let k = 0; k < tokens; k++, at += tokenBytes) {
      const token = event.queryTokens[k] as number;
      if (token > tokenLimit) throw unencodable(`query token ${token} needs a store for more than ${MAX_NARROW_QUERY_BUCKETS} query buckets`);
      if (tokenBytes === 2) view.setUint16(at, token, true);
      else view.setUint32(at, token, true);
    }
  }
  return buffer;
}

function unencodable(what: string): TasteError {
  return new TasteError(ErrorCodes.CONFIG_INVALID, `cannot store this window: ${what}`);
}

function corrupt(what: string): TasteError {
  return new TasteError(ErrorCodes.STORE_CORRUPT, `stored window is corrupt: ${what}`);
}

export function decodeWindow(buffer: Buffer): WindowEvent[] {
  if (buffer.length < HEADER_BYTES) throw corrupt(`${buffer.length} bytes is shorter than its header`);
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const format = view.getUint8(0);
  if (format !== WINDOW_FORMAT && format !== WINDOW_FORMAT_WIDE && format !== WINDOW_FORMAT_FIXED) throw corrupt(`unknown format ${format}`);
  const tokenBytes = format === WINDOW_FORMAT_WIDE ? 4 : 2;
  const queryTokens = view.getUint8(1);
  const count = view.getUint16(2, true);
  const window: WindowEvent[] = new Array(count);
  let at = HEADER_BYTES;
  for (let index = 0; index < count; index++) {
    if (at + FIXED_RECORD_BYTES + (format === WINDOW_FORMAT_FIXED ? 2 * queryTokens : 1) > buffer.length) {
      throw corrupt(`${buffer.length} bytes end inside record ${index} of ${count}`);
    }
    const event = {
      eventTimeMs: view.getFloat64(at, true),
      offset: view.getFloat64(at + 8, true),
      itemId: view.getUint32(at + 16, true),
      partition: view.getUint16(at + 20, true),
      stream: view.getUint8(at + 22) as Stream,
      kind: view.getUint8(at + 23) as EventKind,
      queryTokens: [] as number[],
    };
    if (format !== WINDOW_FORMAT_FIXED) {
      const tokens = view.getUint8(at + 24);
      at += FIXED_RECORD_BYTES + 1;
      if (tokens > queryTokens || at + tokenBytes * tokens > buffer.length) throw corrupt(`record ${index} claims ${tokens} query tokens`);
      for (let k = 0; k < tokens; k++, at += tokenBytes) event.queryTokens.push(tokenBytes === 2 ? view.getUint16(at, true) : view.getUint32(at, true));
    } else {
      at += FIXED_RECORD_BYTES;
      for (let k = 0; k < queryTokens; k++, at += 2) {
        const token = view.getUint16(at, true);
        if (token !== 0) event.queryTokens.push(token);
      }
    }
    window[index] = event;
  }
  if (at !== buffer.length) throw corrupt(`${buffer.length - at} bytes after the last of ${count} records`);
  return window;
}

/** Highest applied offset per "topic:partition". Topic names never contain ':' or ';'. */
export type HighWaterMarks = Map<string, number>;

export function sourceKey(topic: string, partition: number): string {
  return `${topic}:${partition}`;
}

export function encodeHighWater(marks: HighWaterMarks): string {
  return [...marks].map(([source, offset]) => `${source}:${offset}`).join(';');
}

export function decodeHighWater(text: string): HighWaterMarks {
  const marks: HighWaterMarks = new Map();
  if (text === '') return marks;
  for (const entry of text.split(';')) {
    const cut = entry.lastIndexOf(':');
    const offset = Number(entry.slice(cut + 1));
    if (cut <= 0 || !Number.isSafeInteger(offset)) throw corrupt(`bad high-water entry "${entry}"`);
    marks.set(entry.slice(0, cut), offset);
  }
  return marks;
}

export function encodeVector(vector: Float32Array): Buffer {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
}

export function decodeVector(buffer: Buffer): Float32Array {
  if (buffer.length % 4 !== 0) throw corrupt(`embedding of ${buffer.length} bytes is not float32`);
  const vector = new Float32Array(buffer.length / 4);
  new Uint8Array(vector.buffer).set(buffer);
  return vector;
}
