import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import type { EventKind, WindowEvent } from '../../events/window-event.js';

// The reliability suite's ground truth, rebuilt without the pipeline's own code: a bug in the
// production featurizer or window merge must show up as a mismatch, not be copied into the truth.
// Everything below is written from docs/model-contract.md and proto/taste/v1/events.proto; only
// the WindowEvent type is shared (a shape, no behaviour).

const EVENTS_PROTO = fileURLToPath(new URL('../../../proto/taste/v1/events.proto', import.meta.url));

/** One record as read back from Kafka, with its source coordinates. */
export interface SourceRecord {
  topic: string;
  partition: number;
  offset: string;
  value: Buffer | null;
}

/** Documented stream order of ties: plays before searches. */
const STREAM = { play: 0, search: 1 } as const;
/** Documented event kinds. */
const KIND = { play: 1, completed: 2, skipped: 3, search: 4 } as const;

export interface OracleModel {
  /** items.tsv: line i is the URI of item id i; 0 is padding, 1 unknown. */
  itemUris: string[];
  queryTokens: number;
  queryBuckets: number;
  /** Events a stored window keeps (max_seq_len, or a stateful model's tail). */
  windowEvents: number;
}

export function oracleModel(modelDir: string, metadata: { queryTokens: number; queryBuckets: number; maxSeqLen: number }): OracleModel {
  const itemUris = readFileSync(join(modelDir, 'items.tsv'), 'utf8').split('\n');
  if (itemUris[itemUris.length - 1] === '') itemUris.pop();
  return { itemUris, queryTokens: metadata.queryTokens, queryBuckets: metadata.queryBuckets, windowEvents: metadata.maxSeqLen };
}

/**
 * Per user, every event in the contract's order (event time, then stream, partition, offset) and
 * the window: its newest `windowEvents`. `records` must hold only valid events (the caller knows
 * which records it made invalid on purpose).
 */
export function oracleTruth(records: readonly SourceRecord[], topics: { play: string; search: string }, model: OracleModel) {
  const root = protobuf.loadSync(EVENTS_PROTO);
  const types = { play: root.lookupType('taste.v1.PlayEvent'), search: root.lookupType('taste.v1.SearchEvent') };
  const itemIds = new Map(model.itemUris.map((uri, id) => [uri, id]));
  const idOf = (uri: string) => (uri === '' ? 0 : Math.max(1, itemIds.get(uri) ?? 1));
  const byUser = new Map<string, WindowEvent[]>();
  for (const record of records) {
    const stream = record.topic === topics.play ? 'play' : record.topic === topics.search ? 'search' : undefined;
    if (!stream || !record.value) throw new Error(`oracle: ${record.topic}:${record.partition}:${record.offset} is not a play or search record`);
    const fields = types[stream].toObject(types[stream].decode(record.value), { longs: Number, enums: String, defaults: true });
    const base = { eventTimeMs: Number(fields.eventTimeMs), stream: STREAM[stream], partition: record.partition, offset: Number(record.offset) } as const;
    const event: WindowEvent =
      stream === 'play'
        ? { ...base, itemId: idOf(fields.itemUri), kind: playKind(fields.endReason, Number(fields.msPlayed), Number(fields.itemDurationMs)), queryTokens: [] }
        : { ...base, itemId: idOf(fields.clickedItemUri), kind: KIND.search, queryTokens: queryTokenIds(fields.query, model.queryTokens, model.queryBuckets) };
    const events = byUser.get(fields.userId) ?? [];
    events.push(event);
    byUser.set(fields.userId, events);
  }
  const users = new Map<string, { window: WindowEvent[]; applied: number; events: WindowEvent[] }>();
  for (const [userId, events] of byUser) {
    events.sort((a, b) => a.eventTimeMs - b.eventTimeMs || a.stream - b.stream || a.partition - b.partition || a.offset - b.offset);
    users.set(userId, { window: events.slice(Math.max(0, events.length - model.windowEvents)), applied: events.length, events });
  }
  return users;
}

/** docs/model-contract.md, "Event kind of a play". */
function playKind(endReason: string, msPlayed: number, itemDurationMs: number): EventKind {
  if (endReason === 'END_REASON_COMPLETED' || (itemDurationMs > 0 && msPlayed * 10 >= itemDurationMs * 9)) return KIND.completed;
  if (endReason === 'END_REASON_SKIPPED_FORWARD' || endReason === 'END_REASON_SKIPPED_BACKWARD' || msPlayed < 30_000) return KIND.skipped;
  return KIND.play;
}

/** docs/model-contract.md, "Query tokens". */
function queryTokenIds(query: string, maxTokens: number, buckets: number): number[] {
  const tokens = query.normalize('NFKC').toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  return tokens.slice(0, maxTokens).map((token) => {
    let hash = 2166136261;
    for (const byte of Buffer.from(token, 'utf8')) hash = Number((BigInt((hash ^ byte) >>> 0) * 16777619n) % 4294967296n);
    return 1 + (hash % (buckets - 1));
  });
}
