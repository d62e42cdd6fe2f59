// An event as the Kafka contract defines it: the protobuf message itself (its __Output shape, i.e.
// every field present), tagged with which payload it is. Kafka bytes decode to one, a JSONL line or
// a Parquet row parses to one (record-schema.ts), and the simulator makes them.
import type { PlayEvent__Output } from '../proto/generated/taste/v1/PlayEvent.js';
import type { SearchEvent__Output } from '../proto/generated/taste/v1/SearchEvent.js';

/** The two event payloads; also the `type` of a file record. */
export const EventTypes = { PLAY: 'play', SEARCH: 'search' } as const;
export type EventType = (typeof EventTypes)[keyof typeof EventTypes];

export type EventRecord =
  | { readonly kind: typeof EventTypes.PLAY; readonly event: PlayEvent__Output }
  | { readonly kind: typeof EventTypes.SEARCH; readonly event: SearchEvent__Output };

export type PlayContextName = PlayEvent__Output['context'];
export type EndReasonName = PlayEvent__Output['endReason'];
