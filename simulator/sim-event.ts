// What the simulator produces: the protobuf event types themselves (their __Output shapes, i.e.
// every field present), tagged with which Kafka payload they are.
import type { PlayEvent__Output } from '../proto/generated/taste/v1/PlayEvent.js';
import type { SearchEvent__Output } from '../proto/generated/taste/v1/SearchEvent.js';

export type SimEvent =
  | { readonly kind: 'play'; readonly event: PlayEvent__Output }
  | { readonly kind: 'search'; readonly event: SearchEvent__Output };

export type PlayContextName = PlayEvent__Output['context'];
export type EndReasonName = PlayEvent__Output['endReason'];
