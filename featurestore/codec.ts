import { ErrorCodes, TasteError } from '../common/errors.js';
import type { EventKind, Stream, WindowEvent } from '../model/features.js';

/**
 * Binary encodings of what the store keeps. Little-endian throughout; no JSON on the hot path.
 *
 * Window: [u8 format=1][u8 Q][u16 count] then count records of
 *   [f64 eventTimeMs][f64 offset][u32 itemId][u16 partition][u8 stream][u8 kind][Q x u16 token]
 */
const WINDOW_FORMAT = 1;
const HEADER_BYTES = 4;
const FIXED_RECORD_BYTES = 24;
export const MAX_STORED_QUERY_BUCKETS = 65_536;

export function encodeWindow(window: readonly WindowEvent[], queryTokens: number): Buffer {
  const recordBytes = FIXED_RECORD_BYTES + 2 * queryTokens;
  const buffer = Buffer.alloc(HEADER_BYTES + window.length * recordBytes);
  buffer.writeUInt8(WINDOW_FORMAT, 0);
  buffer.writeUInt8(queryTokens, 1);
  buffer.writeUInt16LE(window.length, 2);
  window.forEach((event, index) => {
    const at = HEADER_BYTES + index * recordBytes;
    buffer.writeDoubleLE(event.eventTimeMs, at);
    buffer.writeDoubleLE(event.offset, at + 8);
    buffer.writeUInt32LE(event.itemId, at + 16);
    buffer.writeUInt16LE(event.partition, at + 20);
    buffer.writeUInt8(event.stream, at + 22);
    buffer.writeUInt8(event.kind, at + 23);
    for (let k = 0; k < queryTokens; k++) buffer.writeUInt16LE(event.queryTokens[k] ?? 0, at + 24 + 2 * k);
  });
  return buffer;
}

function corrupt(what: string): TasteError {
  return new TasteError(ErrorCodes.STORE_CORRUPT, `stored window is corrupt: ${what}`);
}

export function decodeWindow(buffer: Buffer): WindowEvent[] {
  if (buffer.length < HEADER_BYTES) throw corrupt(`${buffer.length} bytes is shorter than its header`);
  const format = buffer.readUInt8(0);
  if (format !== WINDOW_FORMAT) throw corrupt(`unknown format ${format}`);
  const queryTokens = buffer.readUInt8(1);
  const count = buffer.readUInt16LE(2);
  const recordBytes = FIXED_RECORD_BYTES + 2 * queryTokens;
  if (buffer.length !== HEADER_BYTES + count * recordBytes) {
    throw corrupt(`${buffer.length} bytes for ${count} records of ${recordBytes} bytes`);
  }
  const window: WindowEvent[] = new Array(count);
  for (let index = 0; index < count; index++) {
    const at = HEADER_BYTES + index * recordBytes;
    const tokens: number[] = [];
    for (let k = 0; k < queryTokens; k++) {
      const token = buffer.readUInt16LE(at + 24 + 2 * k);
      if (token !== 0) tokens.push(token);
    }
    window[index] = {
      eventTimeMs: buffer.readDoubleLE(at),
      offset: buffer.readDoubleLE(at + 8),
      itemId: buffer.readUInt32LE(at + 16),
      partition: buffer.readUInt16LE(at + 20),
      stream: buffer.readUInt8(at + 22) as Stream,
      kind: buffer.readUInt8(at + 23) as EventKind,
      queryTokens: tokens,
    };
  }
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
