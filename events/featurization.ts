/**
 * The per-event part of docs/model-contract.md (`taste.features.v1`): a play's kind and a query's
 * token ids. Python training implements the same spec (training/taste_training/features.py);
 * model/testdata/feature_vectors.json and training/tests/test_features.py keep the two identical.
 */
import { type EventKind, EventKinds } from './window-event.js';

/** Plays shorter than this count as skips (the industry's usual 30-second rule). */
const SKIP_THRESHOLD_MS = 30_000;

export function playEventKind(endReason: string, msPlayed: number, itemDurationMs: number): EventKind {
  if (endReason === 'END_REASON_COMPLETED') return EventKinds.COMPLETED;
  if (itemDurationMs > 0 && msPlayed * 10 >= itemDurationMs * 9) return EventKinds.COMPLETED;
  if (endReason === 'END_REASON_SKIPPED_FORWARD' || endReason === 'END_REASON_SKIPPED_BACKWARD') {
    return EventKinds.SKIPPED;
  }
  if (msPlayed < SKIP_THRESHOLD_MS) return EventKinds.SKIPPED;
  return EventKinds.PLAY;
}

const encoder = new TextEncoder();
const TOKEN_PATTERN = /[\p{L}\p{N}]+/gu;

export function fnv1a32(bytes: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (const byte of bytes) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/** Query text → up to `maxTokens` token ids in 1..buckets-1 (0 is padding). */
export function tokenizeQuery(query: string, maxTokens: number, buckets: number): number[] {
  const normalized = query.normalize('NFKC').toLowerCase();
  const ids: number[] = [];
  for (const match of normalized.matchAll(TOKEN_PATTERN)) {
    if (ids.length >= maxTokens) break;
    ids.push(1 + (fnv1a32(encoder.encode(match[0])) % (buckets - 1)));
  }
  return ids;
}
