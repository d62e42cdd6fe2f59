import type { Cluster, Redis } from 'ioredis';
import { ErrorCodes, TasteError } from '../common/errors.js';
import type { WindowEvent } from '../events/window-event.js';
import type { ErasureRequest } from '../events/erasure-request.js';
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
import { StateFields, tombstoneKey, userKey, versionsKey } from './keys.js';
import { MultiHashReader } from './multi-hash-read.js';
import { parseTombstone, type Tombstone } from './tombstones.js';

export type { Tombstone } from './tombstones.js';

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
  /** The user was erased: events at or before `atMs` must not be applied (docs/erasure.md). */
  tombstone?: Tombstone;
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
  /**
   * The tombstone read with the state (Tombstone.raw), or none. The write happens only if it still
   * holds: an erasure between the read and the write makes the writer lose, even for a user that
   * had no state to delete (version 0 before and after).
   */
  expectedTombstone?: string;
}

/** One model version's part of a write across versions (FeatureStore.writeAcrossVersions). */
export interface VersionedUpdate {
  store: FeatureStore;
  update: StateUpdate;
}

/** What one erasure request did. */
export const ErasureOutcomes = {
  /** The user's keys were deleted and the tombstone set to the request time. */
  ERASED: 'erased',
  /** A tombstone at or after the request time was there already (a redelivery, or an older request): nothing changed. */
  ALREADY_ERASED: 'already-erased',
} as const;
export type ErasureOutcome = (typeof ErasureOutcomes)[keyof typeof ErasureOutcomes];

export interface ErasureResult {
  outcome: ErasureOutcome;
  /** State keys deleted (one per model version the user had). */
  keysDeleted: number;
}

export interface EraseOptions {
  /** How long a tombstone outlives its request time; undefined: forever (docs/erasure.md). */
  tombstoneLifetimeMs?: number;
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
  /** Called once if batched reads fall back to one HMGET per user for good (the Redis user may not run EVALSHA/EVAL). */
  onBatchReadsRefused?: (reason: string) => void;
}

export type StoreOperation = 'load-state' | 'write-state' | 'read-embeddings' | 'erase';

/** What the store reports; metrics/ turns it into Prometheus metrics. */
export interface FeatureStoreObserver {
  /** After every Redis round: which operation, how long, whether it worked. */
  onOperation?(operation: StoreOperation, seconds: number, ok: boolean): void;
}

// Compare-and-set of the whole user state in one step: the write lands only if nobody wrote since
// we read, so a redelivered or concurrent batch can never apply an event twice or go backwards,
// and only if the tombstone is still the one read, so an erasure in between always wins.
// An expected version that is not a whole number is a corrupt one being replaced: it becomes 1.
// A new state copies the tombstone it was begun under into its own field, so that loading a user
// with state is one HMGET: an erasure deletes the state, so the copy can only be the tombstone
// that stood when the state began (later ones delete it), and comparing it catches a state
// erased and rebuilt to the very version a writer read.
// KEYS: state, tombstone, versions set. ARGV: expected version, expected tombstone ('' for none),
// this model version (added to the set, so an erasure finds the key), then the fields.
const WRITE_STATE_SCRIPT = `
local current = redis.call('HGET', KEYS[1], '${StateFields.version}')
if (current or '0') ~= ARGV[1] then return 0 end
local tombstone
if current then tombstone = redis.call('HGET', KEYS[1], '${StateFields.erasedUnder}') or ''
else tombstone = redis.call('GET', KEYS[2]) or '' end
if tombstone ~= ARGV[2] then return 0 end
local version = string.match(ARGV[1], '^%d+$') and tonumber(ARGV[1]) or 0
redis.call('HSET', KEYS[1], '${StateFields.version}', string.format('%d', version + 1), '${StateFields.erasedUnder}', tombstone, unpack(ARGV, 4))
redis.call('SADD', KEYS[3], ARGV[3])
return 1
`;

// WRITE_STATE_SCRIPT for one user in several model versions at once: every version's
// compare-and-set is checked first, and only if all hold is any written, so a primary and its
// shadows never drift apart by a half-applied step. KEYS: tombstone, versions set, then the state
// key of each version. ARGV: the number of versions, then per version: expected version, expected
// tombstone, model version, number of field arguments, the fields.
const WRITE_ACROSS_VERSIONS_SCRIPT = `
local count = tonumber(ARGV[1])
local writes = {}
local at = 2
for i = 1, count do
  local key, expected = KEYS[2 + i], ARGV[at]
  local current = redis.call('HGET', key, '${StateFields.version}')
  if (current or '0') ~= expected then return 0 end
  local tombstone
  if current then tombstone = redis.call('HGET', key, '${StateFields.erasedUnder}') or ''
  else tombstone = redis.call('GET', KEYS[1]) or '' end
  if tombstone ~= ARGV[at + 1] then return 0 end
  local fields = tonumber(ARGV[at + 3])
  writes[i] = { key = key, expected = expected, tombstone = tombstone, model = ARGV[at + 2], first = at + 4, last = at + 3 + fields }
  at = at + 4 + fields
end
for i = 1, count do
  local w = writes[i]
  local version = string.match(w.expected, '^%d+$') and tonumber(w.expected) or 0
  redis.call('HSET', w.key, '${StateFields.version}', string.format('%d', version + 1), '${StateFields.erasedUnder}', w.tombstone, unpack(ARGV, w.first, w.last))
  redis.call('SADD', KEYS[2], w.model)
end
return 1
`;

// One user's erasure in one step. KEYS: tombstone, versions set, then the state key of every model
// version in ARGV[4..] (same order). ARGV: request time, request id, when the tombstone expires
// ('' for never), then the model versions. Returns {1, keys deleted}; {0, 0} when a tombstone at
// or after the request time is there (a redelivery changes nothing, and never deletes the fresh
// profile begun after it); {-1, 0} when the set holds a version the caller did not list (a new
// model wrote meanwhile): read the set again. An unparsable tombstone is replaced.
const ERASE_SCRIPT = `
local tombstone = redis.call('GET', KEYS[1])
if tombstone then
  local at = tonumber(string.match(tombstone, '^(%d+);'))
  if at and at >= tonumber(ARGV[1]) then return {0, 0} end
end
local listed = {}
for i = 4, #ARGV do listed[ARGV[i]] = true end
for _, version in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if not listed[version] then return {-1, 0} end
end
local deleted = 0
for i = 3, #KEYS do deleted = deleted + redis.call('DEL', KEYS[i]) end
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ';' .. ARGV[2])
if ARGV[3] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[3]) end
return {1, deleted}
`;

/** Most model versions one write across versions may hold: a primary and its shadows. */
export const MAX_VERSIONS_PER_WRITE = 8;

function writeAcrossCommandName(versions: number): string {
  return `tasteWriteAcross${versions}`;
}

/** Tries of one erasure while new model versions keep appearing in the user's set. */
const MAX_ERASE_ATTEMPTS = 8;

/** Names the per-user keys beside the state use (keys.ts): a model version may not take them. */
const RESERVED_VERSION_NAMES = new Set(['versions', 'erased']);

/** A stored version or count: a whole number as this store writes it. */
const COUNT_PATTERN = /^(0|[1-9][0-9]{0,15})$/;

type ScriptedRedis = RedisClient & {
  tasteWriteState(
    stateKey: string,
    tombstoneKey: string,
    versionsKey: string,
    expectedVersion: string | Buffer,
    expectedTombstone: string,
    modelVersion: string,
    ...fieldsAndValues: (string | Buffer)[]
  ): Promise<number>;
};

export class FeatureStore {
  readonly #redis: ScriptedRedis;
  /** Batched reads (the updater's states, serving's embeddings): one script per Redis node instead of one HMGET per user. */
  readonly #multiRead: MultiHashReader;
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
    if (RESERVED_VERSION_NAMES.has(options.modelVersion)) {
      throw new TasteError(ErrorCodes.CONFIG_INVALID, `model version "${options.modelVersion}" is reserved for the per-user keys beside the state`);
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
      redis.defineCommand('tasteWriteState', { numberOfKeys: 3, lua: WRITE_STATE_SCRIPT });
    }
    // All at once, before the first command: an auto-pipelined client lacks commands defined later.
    for (let versions = 1; versions <= MAX_VERSIONS_PER_WRITE; versions++) {
      if (typeof (redis as unknown as Record<string, unknown>)[writeAcrossCommandName(versions)] !== 'function') {
        redis.defineCommand(writeAcrossCommandName(versions), { numberOfKeys: 2 + versions, lua: WRITE_ACROSS_VERSIONS_SCRIPT });
      }
    }
    this.#redis = redis;
    this.#multiRead = new MultiHashReader(redis, options.onBatchReadsRefused);
  }

  key(userId: string): string {
    return userKey(this.#prefix, userId, this.modelVersion);
  }

  /**
   * Each user's state and the tombstone it must respect: for a user with state, the copy in the
   * state (one HMGET); for a user without, the tombstone key, read in a second round for them only.
   */
  async loadStates(userIds: readonly string[]): Promise<Map<string, UserState>> {
    const { rows, tombstones } = await this.#guard('load-state', async () => {
      const rows = await this.#multiRead.read(
        userIds.map((userId) => this.key(userId)),
        [
          StateFields.version,
          StateFields.window,
          StateFields.highWater,
          StateFields.appliedTotal,
          StateFields.erasedUnder,
          ...(this.stateDim === undefined ? [] : [StateFields.checkpointState, StateFields.checkpointEventMs]),
        ],
      );
      const stateless = userIds.filter((_, index) => !rows[index]?.[0]);
      const read = await Promise.all(stateless.map((userId) => this.#redis.get(tombstoneKey(this.#prefix, userId))));
      const tombstones = new Map(stateless.map((userId, index) => [userId, read[index] ?? '']));
      return { rows, tombstones };
    });
    const states = new Map<string, UserState>();
    userIds.forEach((userId, index) => {
      const row = rows[index] ?? [];
      const state = this.#decodeState(row);
      const tombstone = tombstones.get(userId) ?? row[4]?.toString('latin1') ?? '';
      states.set(userId, tombstone === '' ? state : { ...state, tombstone: parseTombstone(tombstone) });
    });
    return states;
  }

  /**
   * Erases each requested user: deletes their state for every model version written for them and
   * leaves a tombstone at the request time, in one step per user (ERASE_SCRIPT). Applied even to a
   * user with no state, so an erasure that comes before late events still wins. Harmless when
   * redelivered. Requests for the same user are applied in order; the latest request time wins.
   */
  async erase(requests: readonly ErasureRequest[], options: EraseOptions = {}): Promise<ErasureResult[]> {
    return this.#guard('erase', async () => {
      const results: ErasureResult[] = new Array(requests.length);
      // One user's requests run one after the other (the latest time wins either way); users run together.
      const byUser = new Map<string, number[]>();
      requests.forEach((request, index) => byUser.set(request.userId, [...(byUser.get(request.userId) ?? []), index]));
      await Promise.all(
        [...byUser.values()].map(async (indexes) => {
          for (const index of indexes) results[index] = await this.#eraseOne(requests[index]!, options.tombstoneLifetimeMs);
        }),
      );
      return results;
    });
  }

  async #eraseOne(request: ErasureRequest, lifetimeMs: number | undefined): Promise<ErasureResult> {
    const { userId, requestTimeMs, requestId } = request;
    const expireAt = lifetimeMs === undefined ? '' : String(requestTimeMs + lifetimeMs);
    for (let attempt = 1; attempt <= MAX_ERASE_ATTEMPTS; attempt++) {
      // This store's own version too: states written before the versions set existed are not in it.
      const versions = [...new Set([this.modelVersion, ...(await this.#redis.smembers(versionsKey(this.#prefix, userId)))])];
      const keys = [tombstoneKey(this.#prefix, userId), versionsKey(this.#prefix, userId), ...versions.map((version) => userKey(this.#prefix, userId, version))];
      // EVAL, not a defined command: ioredis routes a defined command of variable key count by its
      // first argument, the count, which sends it to the wrong Cluster node; EVAL it reads right.
      // Erasures are rare, so sending the script each time costs nothing that matters.
      const [status, deleted] = (await this.#redis.eval(ERASE_SCRIPT, keys.length, ...keys, String(requestTimeMs), requestId, expireAt, ...versions)) as [number, number];
      if (status === 1) return { outcome: ErasureOutcomes.ERASED, keysDeleted: deleted };
      if (status === 0) return { outcome: ErasureOutcomes.ALREADY_ERASED, keysDeleted: 0 };
    }
    throw new TasteError(ErrorCodes.STORE_CONFLICT, `user ${userId}: new model versions kept appearing during ${MAX_ERASE_ATTEMPTS} erasure attempts`, {
      canRetry: true,
    });
  }

  /** One state row (HMGET of loadStates) → the state; what does not decode marks it corrupt. */
  #decodeState(row: (Buffer | null)[]): UserState {
    const [version, window, highWater, appliedTotal, , checkpointState, checkpointEventMs] = row;
    const parsedVersion = version ? parseCount(version) : 0;
    if (parsedVersion === undefined) {
      return { version: 0, corruptVersion: version!, appliedTotal: 0, window: [], highWater: new Map(), corrupt: true };
    }
    try {
      const total = appliedTotal ? parseCount(appliedTotal) : 0;
      if (total === undefined) throw new TasteError(ErrorCodes.STORE_CORRUPT, `stored event count "${appliedTotal}" is not a count`);
      const checkpoint = checkpointState ? this.#decodeCheckpoint(checkpointState, checkpointEventMs) : undefined;
      return {
        version: parsedVersion,
        appliedTotal: total,
        window: window ? decodeWindow(window) : [],
        highWater: highWater ? decodeHighWater(highWater.toString()) : new Map(),
        ...(checkpoint ? { checkpoint } : {}),
      };
    } catch (error) {
      if (!(error instanceof TasteError) || error.code !== ErrorCodes.STORE_CORRUPT) throw error;
      return { version: parsedVersion, appliedTotal: 0, window: [], highWater: new Map(), corrupt: true };
    }
  }

  /** Applies each update atomically if its expected version still holds. */
  async writeStates(updates: readonly StateUpdate[]): Promise<WriteOutcome[]> {
    const results = await this.#guard('write-state', () =>
      Promise.all(
        updates.map((update) =>
          this.#redis.tasteWriteState(
            this.key(update.userId),
            tombstoneKey(this.#prefix, update.userId),
            versionsKey(this.#prefix, update.userId),
            expectedVersionArg(update),
            update.expectedTombstone ?? '',
            this.modelVersion,
            ...this.#fields(update),
          ),
        ),
      ),
    );
    return results.map((result) => (result === 1 ? WriteOutcomes.WRITTEN : WriteOutcomes.CONFLICT));
  }

  /**
   * One user's updates in several model versions (a primary and its shadows), each written in one
   * atomic step per user: every version's compare-and-set must hold, or nothing is written. The
   * user's keys share one hash slot, so this works on a Cluster. Every store must use this store's
   * Redis client and key prefix.
   */
  async writeAcrossVersions(users: readonly (readonly VersionedUpdate[])[]): Promise<WriteOutcome[]> {
    for (const parts of users) {
      if (parts.length === 0) throw new TasteError(ErrorCodes.CONFIG_INVALID, 'a write across versions needs at least one update');
      const userId = parts[0]!.update.userId;
      const versions = new Set<string>();
      for (const { store, update } of parts) {
        if (store.#redis !== this.#redis || store.#prefix !== this.#prefix) {
          throw new TasteError(ErrorCodes.CONFIG_INVALID, `model version "${store.modelVersion}" uses another Redis client or key prefix than "${this.modelVersion}"`);
        }
        if (update.userId !== userId) throw new TasteError(ErrorCodes.CONFIG_INVALID, `one write across versions holds two users (${userId}, ${update.userId})`);
        if (versions.has(store.modelVersion)) throw new TasteError(ErrorCodes.CONFIG_INVALID, `one write across versions holds model version "${store.modelVersion}" twice`);
        versions.add(store.modelVersion);
      }
    }
    const results = await this.#guard('write-state', () =>
      Promise.all(
        users.map((parts) => {
          const userId = parts[0]!.update.userId;
          const args: (string | Buffer)[] = [tombstoneKey(this.#prefix, userId), versionsKey(this.#prefix, userId)];
          for (const { store } of parts) args.push(store.key(userId));
          args.push(String(parts.length));
          for (const { store, update } of parts) {
            const fields = store.#fields(update);
            args.push(expectedVersionArg(update), update.expectedTombstone ?? '', store.modelVersion, String(fields.length), ...fields);
          }
          return this.#writeAcrossCommand(parts.length)(...args);
        }),
      ),
    );
    return results.map((result) => (result === 1 ? WriteOutcomes.WRITTEN : WriteOutcomes.CONFLICT));
  }

  /**
   * The write-across script for `versions` state keys: one defined command per count, since ioredis
   * routes a defined command by its first key on a Cluster only when its key count is fixed (see #eraseOne).
   */
  #writeAcrossCommand(versions: number): (...args: (string | Buffer)[]) => Promise<number> {
    if (versions > MAX_VERSIONS_PER_WRITE) {
      throw new TasteError(ErrorCodes.CONFIG_INVALID, `a write across versions holds ${versions} model versions; at most ${MAX_VERSIONS_PER_WRITE} (a primary and ${MAX_VERSIONS_PER_WRITE - 1} shadows)`);
    }
    const redis = this.#redis as unknown as Record<string, (...args: (string | Buffer)[]) => Promise<number>>;
    const name = writeAcrossCommandName(versions);
    return (...args) => redis[name]!(...args);
  }

  /** The state fields an update writes, as HSET field-value pairs (the version and `er` are the script's). */
  #fields(update: StateUpdate): (string | Buffer)[] {
    return [
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
    ];
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
    const rows = await this.#guard('read-embeddings', () => this.#multiRead.read(userIds.map((userId) => this.key(userId)), EMBEDDING_FIELDS));
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
      if (!allFinite(vector)) return { status: 'corrupt', reason: 'embedding holds a value that is not finite' };
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

/** What serving reads of a user, in the order `readEmbeddingResults` decodes them. */
const EMBEDDING_FIELDS = [StateFields.embedding, StateFields.updatedMs, StateFields.lastEventMs, StateFields.eventsInWindow] as const;

/** A plain loop: `every(Number.isFinite)` calls a function per float, on every served user. */
function allFinite(vector: Float32Array): boolean {
  for (let i = 0; i < vector.length; i++) if (!Number.isFinite(vector[i]!)) return false;
  return true;
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

/** The expected-version argument of a write: the corrupt bytes it replaces, or the version read. */
function expectedVersionArg(update: StateUpdate): string | Buffer {
  return update.replacesCorruptVersion ?? String(update.expectedVersion);
}
