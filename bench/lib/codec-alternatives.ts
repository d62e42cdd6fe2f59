import type { EventKind, Stream, WindowEvent } from '../../events/window-event.js';

/**
 * The window codec before format 2 (fixed records, Q zero-padded token slots, Buffer methods and a
 * closure per event), kept as the baseline that redis-write.bench.ts measures the current one against.
 */
export function encodeWindowFixed(window: readonly WindowEvent[], queryTokens: number): Buffer {
  const recordBytes = 24 + 2 * queryTokens;
  const buffer = Buffer.alloc(4 + window.length * recordBytes);
  buffer.writeUInt8(1, 0);
  buffer.writeUInt8(queryTokens, 1);
  buffer.writeUInt16LE(window.length, 2);
  window.forEach((event, index) => {
    const at = 4 + index * recordBytes;
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

export function decodeWindowFixed(buffer: Buffer): WindowEvent[] {
  const queryTokens = buffer.readUInt8(1);
  const count = buffer.readUInt16LE(2);
  const recordBytes = 24 + 2 * queryTokens;
  if (buffer.readUInt8(0) !== 1 || buffer.length !== 4 + count * recordBytes) throw new Error('not a format 1 window');
  const window: WindowEvent[] = new Array(count);
  for (let index = 0; index < count; index++) {
    const at = 4 + index * recordBytes;
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
