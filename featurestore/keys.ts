/**
 * Key layout. One Redis hash per (user, model version): the user id sits in a hash tag so that
 * everything about a user maps to one Cluster slot, and the model version keeps models apart so a
 * new model can be backfilled beside the one being served.
 *
 *   <prefix>:{<userId>}:<modelVersion>  →  hash
 *     ver   state version, +1 per write (compare-and-set guard)
 *     win   the user's window: featurized events, binary (codec.ts)
 *     hw    per topic-partition, the highest offset applied ("topic:partition:offset;…")
 *     emb   the embedding, raw little-endian float32
 *     upd   when the embedding was written (ms since epoch)
 *     last  event time of the newest event in the window (ms since epoch)
 *     n     events in the window
 *     total events applied since the state began (audits exactly-once: equals events sent)
 *     er    the tombstone (below) this state began under, "" if none: events at or before it are dropped
 *   stateful models only (docs/model-contract.md, "The stateful kind"):
 *     st    the checkpoint: the model state after every applied event before the window, float32
 *     ct    event time of the newest event in the checkpoint (ms since epoch); absent if none
 *
 * Beside them, per user, in the same slot (docs/erasure.md):
 *   <prefix>:{<userId>}:versions  →  set of the model versions written for this user, so that an
 *                                    erasure finds every key of theirs without a SCAN
 *   <prefix>:{<userId>}:erased    →  the tombstone "<request time ms>;<request id>": no event at or
 *                                    before that time may be applied; expires with the events
 */
export const StateFields = {
  version: 'ver',
  window: 'win',
  highWater: 'hw',
  embedding: 'emb',
  updatedMs: 'upd',
  lastEventMs: 'last',
  eventsInWindow: 'n',
  appliedTotal: 'total',
  erasedUnder: 'er',
  checkpointState: 'st',
  checkpointEventMs: 'ct',
} as const;

export function userKey(prefix: string, userId: string, modelVersion: string): string {
  return `${prefix}:{${userId}}:${modelVersion}`;
}

/** The set of model versions that have a state key for this user. */
export function versionsKey(prefix: string, userId: string): string {
  return `${prefix}:{${userId}}:versions`;
}

/** The user's erasure tombstone. */
export function tombstoneKey(prefix: string, userId: string): string {
  return `${prefix}:{${userId}}:erased`;
}
