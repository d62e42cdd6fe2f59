import { join } from 'node:path';
import protobuf from 'protobufjs';
import type { PlayEvent, PlayEvent__Output } from './generated/taste/v1/PlayEvent.js';
import type { SearchEvent, SearchEvent__Output } from './generated/taste/v1/SearchEvent.js';
import { EVENTS_PROTO, PROTO_ROOT } from './paths.js';

/**
 * Binary protobuf codec for the Kafka payloads, from the .proto itself (no hand-written schema).
 * Decoded objects have the shape of the generated `__Output` types: camelCase fields, enums as
 * their names, int64 as numbers, defaults filled in.
 */
const root = protobuf.loadSync(join(PROTO_ROOT, EVENTS_PROTO));
/** The message types: file records are read by them too (events/record-schema.ts). */
export const playType = root.lookupType('taste.v1.PlayEvent');
export const searchType = root.lookupType('taste.v1.SearchEvent');
/** The `toObject` options that give decoded objects their `__Output` shape. */
export const toObjectOptions: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: true };

export function encodePlayEvent(event: PlayEvent): Buffer {
  return Buffer.from(playType.encode(playType.fromObject(event)).finish());
}

export function encodeSearchEvent(event: SearchEvent): Buffer {
  return Buffer.from(searchType.encode(searchType.fromObject(event)).finish());
}

/** Throws on bytes that are not a valid encoding of the message. */
export function decodePlayEvent(bytes: Uint8Array): PlayEvent__Output {
  return playType.toObject(playType.decode(bytes), toObjectOptions) as PlayEvent__Output;
}

export function decodeSearchEvent(bytes: Uint8Array): SearchEvent__Output {
  return searchType.toObject(searchType.decode(bytes), toObjectOptions) as SearchEvent__Output;
}
