import { ErrorCodes, TasteError } from '../common/errors.js';

/**
 * One of `count` disjoint parts of a backfill (docs/backfill.md "Sharded backfills"): index in
 * [0, count). The shards of one `count` cover every user exactly once, so running them all — in
 * any order, side by side — writes what one unsharded run writes.
 */
export interface Shard {
  index: number;
  count: number;
}

/** The shard as the CLI spells it: `I/N`. */
export function formatShard(shard: Shard): string {
  return `${shard.index}/${shard.count}`;
}

/** Throws unless `shard` is an index in [0, count) of a positive whole count. */
export function validateShard(shard: Shard): Shard {
  const { index, count } = shard;
  if (!Number.isSafeInteger(count) || count < 1) {
    throw new TasteError(ErrorCodes.CONFIG_INVALID, `the shard count must be a whole number ≥ 1, got ${count}`);
  }
  if (!Number.isSafeInteger(index) || index < 0 || index >= count) {
    throw new TasteError(ErrorCodes.CONFIG_INVALID, `the shard index must be a whole number in 0..${count - 1} (0-based, below the count ${count}), got ${index}`);
  }
  return shard;
}

const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * 32-bit FNV-1a over the user id's UTF-8 bytes. Fixed and written down (docs/backfill.md), unlike
 * a runtime's seeded hash, so every process, version and language puts a user in the same shard.
 */
export function userHash(userId: string): number {
  let hash = FNV_OFFSET_BASIS;
  for (let index = 0; index < userId.length; index++) {
    const code = userId.charCodeAt(index);
    // Valid user ids are ASCII, whose UTF-8 bytes are its char codes: no encoding per record.
    if (code >= 0x80) return fnv1a(Buffer.from(userId, 'utf8'));
    hash = Math.imul(hash ^ code, FNV_PRIME) >>> 0;
  }
  return hash;
}

function fnv1a(bytes: Uint8Array): number {
  let hash = FNV_OFFSET_BASIS;
  for (const byte of bytes) hash = Math.imul(hash ^ byte, FNV_PRIME) >>> 0;
  return hash;
}

/** Files: a shard takes the users whose hash falls in it, wherever their events are. */
export function ownsUser(shard: Shard, userId: string): boolean {
  return shard.count === 1 || userHash(userId) % shard.count === shard.index;
}

/**
 * Kafka: a shard takes the partitions p with p mod N = I, of both topics. Events are keyed by
 * user, so a user's plays are all in one partition (and its searches in one): the user is read by
 * one shard only, when it is the same shard in both topics — see `checkShardablePartitions`.
 */
export function ownsPartition(shard: Shard, partition: number): boolean {
  return partition % shard.count === shard.index;
}

/**
 * A user's plays land in partition h mod P₁ and its searches in h mod P₂ (Kafka's default
 * partitioner: a hash h of the key modulo the partition count). Partition p belongs to shard
 * p mod N, so both are in shard h mod N when P₁ = P₂, or when N divides P₁ and P₂. Otherwise one
 * user's plays and searches go to two shards that write its state side by side: still applied
 * exactly once, but not in the unsharded run's order, so the bytes could differ. Refused.
 */
export function checkShardablePartitions(shard: Shard, partitionCounts: ReadonlyMap<string, number>): void {
  if (shard.count === 1) return;
  const counts = [...new Set(partitionCounts.values())];
  if (counts.length <= 1 || counts.every((count) => count % shard.count === 0)) return;
  const listed = [...partitionCounts].map(([topic, count]) => `${topic}: ${count}`).join(', ');
  throw new TasteError(
    ErrorCodes.CONFIG_INVALID,
    `cannot shard the Kafka range ${shard.count} ways: the topics have different partition counts (${listed}), so one user's plays and searches ` +
      `would be read by two shards. Use a shard count that divides every partition count, or run unsharded (docs/backfill.md)`,
  );
}
