import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';

/**
 * How a file is told apart from other files, for deduplication (README "Semantics"): its events
 * are applied under the source `<topic>:<partition>` below with offset = line (JSONL) or row
 * (Parquet) number, so re-running the same file drops what its high-water mark already covers.
 *
 * - `content`: the SHA-256 of the bytes. The same data under any name or path is the same source;
 *   a changed file is a new source. The default.
 * - `name`: the file's base name. For append-only files that grow between runs (the lines already
 *   applied are dropped, the new ones applied); two different files may not share a base name.
 */
export const FileIdentities = { CONTENT: 'content', NAME: 'name' } as const;
export type FileIdentity = (typeof FileIdentities)[keyof typeof FileIdentities];

/** The part of the options that selects events: a different selection is a different source. */
export interface EventSelection {
  sinceMs?: number | undefined;
  untilMs?: number | undefined;
  minEventTimeMs: number;
}

export interface FileCoordinates {
  /** Hex digest of what identifies the file (content or name), recorded in the checkpoint. */
  digest: string;
  /**
   * The "topic" of its events: `file/<16 hex digits>`. `/` cannot occur in a Kafka topic name, so
   * a file never shares a high-water mark with a topic; like topic names it has no `:` or `;`.
   */
  topic: string;
  /**
   * A 16-bit number from the digest (not from the selection). Events are told apart in a window by
   * (time, stream, partition, offset): the same line of the same file read under two selections
   * stays one event, and lines of two different files rarely coincide.
   */
  partition: number;
}

export async function fileDigest(path: string, identity: FileIdentity): Promise<string> {
  const hash = createHash('sha256');
  if (identity === FileIdentities.NAME) return hash.update(`name\0${basename(path)}`).digest('hex');
  hash.update('content\0');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function fileCoordinates(digest: string, selection: EventSelection): FileCoordinates {
  const selected = createHash('sha256')
    .update(`${digest}\0since=${selection.sinceMs ?? ''}\0until=${selection.untilMs ?? ''}\0min=${selection.minEventTimeMs}`)
    .digest('hex');
  return { digest, topic: `file/${selected.slice(0, 16)}`, partition: Number.parseInt(digest.slice(0, 4), 16) };
}
