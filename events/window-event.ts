/**
 * A featurized event: what the feature store keeps per event and what the model's tensors are
 * built from (model/features.ts). docs/model-contract.md (`taste.features.v1`) defines it.
 */

/** Event kinds as the model sees them; 0 marks padding. */
export const EventKinds = { PADDING: 0, PLAY: 1, COMPLETED: 2, SKIPPED: 3, SEARCH: 4 } as const;
export type EventKind = (typeof EventKinds)[keyof typeof EventKinds];

/** Which stream an event came from; only orders events that share a timestamp. */
export const Streams = { PLAY: 0, SEARCH: 1 } as const;
export type Stream = (typeof Streams)[keyof typeof Streams];

/** One event of a user's window, already featurized: what the feature store keeps per event. */
export interface WindowEvent {
  eventTimeMs: number;
  stream: Stream;
  partition: number;
  offset: number;
  itemId: number;
  kind: EventKind;
  /** Hashed query tokens (searches), at most Q of them; empty for plays. */
  queryTokens: readonly number[];
}

/** A validated, featurized event with where it came from (its dedup key is topic:partition:offset). */
export interface SourcedEvent {
  userId: string;
  topic: string;
  event: WindowEvent;
  /**
   * The same event featurized for each shadow model, in the order the featurizer was given their
   * feature spaces (its item ids come from that model's vocabulary). Absent without shadows.
   */
  shadowEvents?: readonly WindowEvent[];
}
