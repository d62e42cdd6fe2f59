import type { Cluster, Redis } from 'ioredis';
import { ErrorCodes, TasteError } from '../common/errors.js';
import { tombstoneKey } from './keys.js';

/** What an erasure leaves behind, for as long as events older than it can still arrive (docs/erasure.md). */
export interface Tombstone {
  /** The latest request time erased: no event at or before it may be applied again. */
  atMs: number;
  requestId: string;
  /** The stored value as read: a write must find exactly it still there (compare-and-set). */
  raw: string;
}

/**
 * A stored tombstone, "<request time ms>;<request id>". One this code cannot parse (a foreign
 * writer's) reads as erasing every event there is, on the side of privacy, until the next erasure
 * of the user replaces it.
 */
export function parseTombstone(raw: string): Tombstone {
  const match = /^(0|[1-9][0-9]{0,15});(.*)$/s.exec(raw);
  if (!match) return { atMs: Number.MAX_SAFE_INTEGER, requestId: '', raw };
  return { atMs: Number(match[1]), requestId: match[2]!, raw };
}

/** Each user's tombstone, undefined where there is none (never erased, or expired): what `taste erase` waits for. */
export async function readTombstones(redis: Redis | Cluster, keyPrefix: string, userIds: readonly string[]): Promise<(Tombstone | undefined)[]> {
  let values: (string | null)[];
  try {
    values = await Promise.all(userIds.map((userId) => redis.get(tombstoneKey(keyPrefix, userId))));
  } catch (cause) {
    throw new TasteError(ErrorCodes.STORE_UNAVAILABLE, `Redis: reading tombstones failed: ${(cause as Error).message}`, { cause, canRetry: true });
  }
  return values.map((value) => (value === null ? undefined : parseTombstone(value)));
}
