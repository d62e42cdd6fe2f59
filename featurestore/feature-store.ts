import type { Cluster, Redis } from 'ioredis';
import { ErrorCodes, TasteError } from '../common/errors.js';
import type { WindowEvent } from '../events/window-event.js';
import {
  decodeHighWater,
  decodeVector,
  decodeWindow,
  encodeHighWater,
  encodeVector,
  encodeWindow,
  type HighWaterMarks,
  MAX_NARROW_QUERY_BUCKETS,
  tokenBytesFor,
} from './codec.js';
import { StateFields, userKey } from './keys.js';

export type RedisClient = Redis | Cluster;

/**
 * A stateful model's checkpoint: its state after every applied event that is no longer in the
 * window. The window (the tail) is re-applied on top of it, so late events within it land exactly.
 */
export interface Checkpoint {
  state: Float32Array;
  /** Event time of the newest event the checkpoint has applied; undefined while it has applied none. */
  lastEventMs: number | undefined;
}

/** What the updater reads before applying new events. */
export interface UserState {
  /** 0 when the user has no state yet for this model. */
  version: number;
  window: WindowEvent[];
  highWater: HighWaterMarks;
  /** Events applied to this state over its whole life. */
  appliedTotal: number;
  /** Stateful models: the checkpoint before the window; undefined when the user has none yet. */
  checkpoint?: Checkpoint;
  /**
   * Some stored field (version, window, offsets, counter, checkpoint) could not be decoded: written
   * by a foreign or broken writer. The state then starts over from the events that follow, still
   * under compare-and-set, instead of failing every batch that touches this user (which would
   * stall the partition forever).
   */
  corrupt?: true;
  /** The stored version, byte for byte, when it is not a version: the next write must replace exactly it. */
  corruptVersion?: Buffer;
}

export interface StoredEmbedding {
  vector: Float32Array;
  updatedMs: number;
  lastEventMs: number;
  eventsInWindow: number;
}

/** One user's embedding as read for serving: there, absent, or stored in a form no reader can use. */
export type EmbeddingRead =
  | { status: 'found'; embedding: StoredEmbedding }
  | { status: 'missing' }
  | { status: 'corrupt'; reason: string };

export interface StateUpdate {
  userId: string;
  /** The version read before computing this update; the write happens only if it still holds. */
  expectedVersion: number;
  /** Instead of expectedVersion: the unparsable version read (UserState.corruptVersion); the write makes it 1. */
  replacesCorruptVersion?: Buffer;
  window: readonly WindowEvent[];
  highWater: HighWaterMarks;
  embedding: Float32Array;
  updatedMs: number;
  appliedTotal: number;
  /** Stateful models: the new checkpoint. */
  checkpoint?: Checkpoint;
}

export const WriteOutcomes = { WRITTEN: 'written', CONFLICT: 'conflict' } as const;
export type WriteOutcome = (typeof WriteOutcomes)[keyof typeof WriteOutcomes];

export interface FeatureStoreOptions {
  redis: RedisClient;
  /** Model version whose keys this store reads and writes. */
  modelVersion: string;
  /** Query tokens per event (the model's Q). */
  queryTokens: number;
  /** The model's query buckets: over 65,536, token ids are stored as u32 (codec.ts, format 3). @default 65536 */
  queryBuckets?: number;
  /** Floats in a stateful model's state; unset for windowed models (no checkpoint is read). */
  stateDim?: number;
  /** Floats in an embedding; when set, a stored embedding of another length reads as corrupt. */
  embeddingDim?: number;
  /** First part of every key. @default 'taste' */
  keyPrefix?: string;
  /** Told about every Redis round (metrics). */
  observer?: FeatureStoreObserver;
}

export type StoreOperation = 'load-state' | 'write-state' | 'read-embeddings';

/** What the store reports; metrics/ turns it into Prometheus metrics. */
export interface FeatureStoreObserver {
  /** After every Redis round: which operation, how long, whether it worked. */
  onOperation?(operation: StoreOperation, seconds: number, ok: boolean): void;
}

// Compare-and-set of the whole user state in one step: the write lands only if nobody wrote since
// we read, so a redelivered or concurrent batch can never apply an event twice or go backwards.
// An expected version that is not a whole number is a corrupt one being replaced: it becomes 1.
const WRITE_STATE_SCRIPT = `
local current = redis.call('HGET', KEYS[1], '${StateFields.version}') or '0'
if current ~= ARGV[1] then return 0 end
local version = string.match(ARGV[1], '^%d+$') and tonumber(ARGV[1]) or 0
redis.call('HSET', KEYS[1], '${StateFields.version}', string.format('%d', version + 1), unpack(ARGV, 2))
return 1
`;

/** A stored version or count: a whole number as this store writes it. */
const COUNT_PATTERN = /^(0|[1-9][0-9]{0,15})$/;

type ScriptedRedis = RedisClient & {
  tasteWriteState(key: string, expectedVersion: string | Buffer, ...fieldsAndValues: (string | Buffer)[]): Promise<number>;
};

export class FeatureStore {
  readonly #redis: ScriptedRedis;
  readonly #prefix: string;
  readonly #observer: FeatureStoreObserver | undefined;
  readonly modelVersion: string;
  readonly queryTokens: number;
  readonly tokenBytes: 2 | 4;
  readonly stateDim: number | undefined;
  readonly embeddingDim: number | undefined;

  constructor(options: FeatureStoreOptions) {
    if (!Number.isInteger(options.queryTokens) || options.queryTokens < 0 || options.queryTokens > 255) {
      throw new TasteError(ErrorCodes.CONFIG_INVALID, `queryTokens must be an integer in 0..255, got ${options.queryTokens}`);
    }
    this.#prefix = options.keyPrefix ?? 'taste';
    this.#observer = options.observer;
    this.modelVersion = options.modelVersion;
    this.queryTokens = options.queryTokens;
    this.tokenBytes = tokenBytesFor(options.queryBuckets ?? MAX_NARROW_QUERY_BUCKETS);
    this.stateDim = options.stateDim;
    this.embeddingDim = options.embeddingDim;
    const redis = options.redis as ScriptedRedis;
    if (typeof redis.tasteWriteState !== 'function') {
      redis.defineCommand('tasteWriteState', { numberOfKeys: 1, lua: WRITE_STATE_SCRIPT });
    }
    this.#redis = redis;
  }

  key(userId: string): string {
    return userKey(this.#prefix, userId, this.modelVersion);
  }

  async loadStates(userIds: readonly string[]): Promise<Map<string, UserState>> {
    const rows = await this.#guard('load-state', () =>
      Promise.all(
        userIds.map((userId) =>
          this.#redis.hmgetBuffer(
            this.key(userId),
            StateFields.version,
            StateFields.window,
            StateFields.highWater,
            StateFields.appliedTotal,
            ...(this.stateDim === undefined ? [] : [StateFields.checkpointState, StateFields.checkpointEventMs]),
          ),
        ),
      ),
    );
    const states = new Map<string, UserState>();
    userIds.forEach((userId, index) => {
      const [version, window, highWater, appliedTotal, checkpointState, checkpointEventMs] = rows[index] ?? [];
      const parsedVersion = version ? parseCount(version) : 0;
      if (parsedVersion === undefined) {
        states.set(userId, { version: 0, corruptVersion: version!, appliedTotal: 0, window: [], highWater: new Map(), corrupt: true });
        return;
      }
      try {
        const total = appliedTotal ? parseCount(appliedTotal) : 0;
        if (total === undefined) throw new TasteError(ErrorCodes.STORE_CORRUPT, `stored event count "${appliedTotal}" is not a count`);
        const checkpoint = checkpointState ? this.#decodeCheckpoint(checkpointState, checkpointEventMs) : undefined;
        states.set(userId, {
          version: parsedVersion,
          appliedTotal: total,
          window: window ? decodeWindow(window) : [],
          highWater: highWater ? decodeHighWater(highWater.toString()) : new Map(),
          ...(checkpoint ? { checkpoint } : {}),
        });
      } catch (error) {
        if (!(error instanceof TasteError) || error.code !== ErrorCodes.STORE_CORRUPT) throw error;
        states.set(userId, { version: parsedVersion, appliedTotal: 0, window: [], highWater: new Map(), corrupt: true });
      }
    });
    return states;
  }

  /** Applies each update atomically if its expected version still holds. */
  async writeStates(updates: readonly StateUpdate[]): Promise<WriteOutcome[]> {
    const results = await this.#guard('write-state', () =>
      Promise.all(
        updates.map((update) =>
          this.#redis.tasteWriteState(
            this.key(update.userId),
            update.replacesCorruptVersion ?? String(update.expectedVersion),
            StateFields.window,
            encodeWindow(update.window, this.queryTokens, this.tokenBytes),
            StateFields.highWater,
            encodeHighWater(update.highWater),
            StateFields.embedding,
            encodeVector(update.embedding),
            StateFields.updatedMs,
            String(update.updatedMs),
            StateFields.lastEventMs,
            String(update.window[update.window.length - 1]?.eventTimeMs ?? 0),
            StateFields.eventsInWindow,
            String(update.window.length),
            StateFields.appliedTotal,
            String(update.appliedTotal),
            ...checkpointFields(update.checkpoint),
          ),
        ),
      ),
    );
    return results.map((result) => (result === 1 ? WriteOutcomes.WRITTEN : WriteOutcomes.CONFLICT));
  }

  /** Embeddings, `undefined` where the user has none for this model version; a corrupt one throws STORE_CORRUPT. */
  async readEmbeddings(userIds: readonly string[]): Promise<(StoredEmbedding | undefined)[]> {
    return (await this.readEmbeddingResults(userIds)).map((read, index) => {
      if (read.status === 'corrupt') throw new TasteError(ErrorCodes.STORE_CORRUPT, `user ${userIds[index]}: ${read.reason}`);
      return read.status === 'found' ? read.embedding : undefined;
    });
  }

  /** Embeddings for serving, one result per user: a corrupt record costs only its own user. */
  async readEmbeddingResults(userIds: readonly string[]): Promise<EmbeddingRead[]> {
    const rows = await this.#guard('read-embeddings', () =>
      Promise.all(
        userIds.map((userId) =>
          this.#redis.hmgetBuffer(
            this.key(userId),
            StateFields.embedding,
            StateFields.updatedMs,
            StateFields.lastEventMs,
            StateFields.eventsInWindow,
          ),
        ),
      ),
    );
    return rows.map(([embedding, updated, last, count]): EmbeddingRead => {
      if (!embedding) return { status: 'missing' };
      if (embedding.length === 0) return { status: 'corrupt', reason: 'embedding is empty' };
      let vector: Float32Array;
      try {
        vector = decodeVector(embedding);
      } catch (error) {
        if (!(error instanceof TasteError) || error.code !== ErrorCodes.STORE_CORRUPT) throw error;
        return { status: 'corrupt', reason: error.message };
      }
      if (this.embeddingDim !== undefined && vector.length !== this.embeddingDim) {
        return { status: 'corrupt', reason: `embedding has ${vector.length} floats, the model's ${this.embeddingDim}` };
      }
      if (!vector.every(Number.isFinite)) return { status: 'corrupt', reason: 'embedding holds a value that is not finite' };
      const updatedMs = updated ? parseCount(updated) : 0;
      const lastEventMs = last ? parseCount(last) : 0;
      const eventsInWindow = count ? parseCount(count) : 0;
      if (updatedMs === undefined || lastEventMs === undefined || eventsInWindow === undefined) {
        return { status: 'corrupt', reason: `embedding metadata does not parse (upd ${updated}, last ${last}, n ${count})` };
      }
      return { status: 'found', embedding: { vector, updatedMs, lastEventMs, eventsInWindow } };
    });
  }

  #decodeCheckpoint(state: Buffer, eventMs: Buffer | null | undefined): Checkpoint {
    const vector = decodeVector(state);
    if (vector.length !== this.stateDim) {
      throw new TasteError(ErrorCodes.STORE_CORRUPT, `stored checkpoint has ${vector.length} floats, the model's state ${this.stateDim}`);
    }
    const lastEventMs = eventMs && eventMs.length > 0 ? Number(eventMs.toString()) : undefined;
    if (lastEventMs !== undefined && !Number.isSafeInteger(lastEventMs)) {
      throw new TasteError(ErrorCodes.STORE_CORRUPT, `stored checkpoint time "${eventMs}" is not an integer`);
    }
    return { state: vector, lastEventMs };
  }

  async #guard<T>(operation: StoreOperation, run: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const result = await run();
      this.#observer?.onOperation?.(operation, (performance.now() - started) / 1000, true);
      return result;
    } catch (cause) {
      this.#observer?.onOperation?.(operation, (performance.now() - started) / 1000, false);
      if (cause instanceof TasteError) throw cause;
      throw new TasteError(ErrorCodes.STORE_UNAVAILABLE, `Redis: ${operation} failed: ${(cause as Error).message}`, {
        cause,
        canRetry: true,
      });
    }
  }
}

/** A whole number as this store writes it (decimal digits, no sign), or undefined. */
function parseCount(bytes: Buffer): number | undefined {
  const text = bytes.toString('latin1');
  return COUNT_PATTERN.test(text) ? Number(text) : undefined;
}

/** The checkpoint's fields; its time is written empty while it has applied no event (HSET keeps no gaps). */
function checkpointFields(checkpoint: Checkpoint | undefined): (string | Buffer)[] {
  if (!checkpoint) return [];
  return [
    StateFields.checkpointState,
    encodeVector(checkpoint.state),
    StateFields.checkpointEventMs,
    checkpoint.lastEventMs === undefined ? '' : String(checkpoint.lastEventMs),
  ];
}
