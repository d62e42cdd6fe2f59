import { join } from 'node:path';
import protobuf from 'protobufjs';
import type { ErasureRequest, ErasureRequest__Output } from './generated/taste/v1/ErasureRequest.js';
import { toObjectOptions } from './event-codec.js';
import { ERASURE_PROTO, PROTO_ROOT } from './paths.js';

/** Binary protobuf codec for erasure requests, from the .proto itself (see event-codec.ts). */
const erasureType = protobuf.loadSync(join(PROTO_ROOT, ERASURE_PROTO)).lookupType('taste.v1.ErasureRequest');

export function encodeErasureRequest(request: ErasureRequest): Buffer {
  return Buffer.from(erasureType.encode(erasureType.fromObject(request)).finish());
}

/** Throws on bytes that are not a valid encoding of the message. */
export function decodeErasureRequest(bytes: Uint8Array): ErasureRequest__Output {
  return erasureType.toObject(erasureType.decode(bytes), toObjectOptions) as ErasureRequest__Output;
}
