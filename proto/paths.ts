import { fileURLToPath } from 'node:url';

/** The .proto sources, found relative to this module (dist/proto → proto). */
export const PROTO_ROOT = fileURLToPath(new URL('../../proto', import.meta.url));
export const EVENTS_PROTO = 'taste/v1/events.proto';
export const ERASURE_PROTO = 'taste/v1/erasure.proto';
export const SERVICE_PROTO = 'taste/v1/embedding_service.proto';
