import * as grpc from '@grpc/grpc-js';
import { describeError, ErrorCodes, TasteError } from '../common/errors.js';
import { silentLogger, type Logger } from '../common/logger.js';
import type { EmbeddingRead, FeatureStore, StoredEmbedding } from '../featurestore/feature-store.js';
import { isValidUserId, USER_ID_PATTERN } from '../events/user-id.js';
import type { BatchGetUserEmbeddingsRequest__Output } from '../proto/generated/taste/v1/BatchGetUserEmbeddingsRequest.js';
import type { GetUserEmbeddingRequest__Output } from '../proto/generated/taste/v1/GetUserEmbeddingRequest.js';
import type { ItemError } from '../proto/generated/taste/v1/ItemError.js';
import type { RecommendItemsRequest__Output } from '../proto/generated/taste/v1/RecommendItemsRequest.js';
import type { RecommendItemsResponse } from '../proto/generated/taste/v1/RecommendItemsResponse.js';
import type { ScoreItemsRequest__Output } from '../proto/generated/taste/v1/ScoreItemsRequest.js';
import type { ScoreItemsResponse } from '../proto/generated/taste/v1/ScoreItemsResponse.js';
import { PAD_ITEM_ID, UNKNOWN_ITEM_ID } from '../model/features.js';
import { ItemKinds, type ItemKind, type ItemRetrieval } from '../model/item-retrieval.js';
import {
  encodeBatchGetUserEmbeddingsResponse,
  encodeGetUserEmbeddingResponse,
  type ServedBatchGetUserEmbeddingsResponse,
  type ServedEmbedding,
  type ServedGetUserEmbeddingResponse,
  type ServedUserEmbeddingResult,
} from './response-encoding.js';
import { EMBEDDING_SERVICE_NAME, loadServiceTypes } from './service-definition.js';

/** The handlers, with responses in the shape serving/response-encoding.ts writes. */
export interface EmbeddingServiceHandlers extends grpc.UntypedServiceImplementation {
  GetUserEmbedding: grpc.handleUnaryCall<GetUserEmbeddingRequest__Output, ServedGetUserEmbeddingResponse>;
  BatchGetUserEmbeddings: grpc.handleUnaryCall<BatchGetUserEmbeddingsRequest__Output, ServedBatchGetUserEmbeddingsResponse>;
  ScoreItems: grpc.handleUnaryCall<ScoreItemsRequest__Output, ScoreItemsResponse>;
  RecommendItems: grpc.handleUnaryCall<RecommendItemsRequest__Output, RecommendItemsResponse>;
}

/**
 * What serving needs from a feature store: reads only, so a test or a cache can stand in.
 * `loadStates` (the user's stored window) is needed only for RecommendItems' exclude_history.
 */
export type EmbeddingReader = Pick<FeatureStore, 'modelVersion' | 'readEmbeddingResults'> & Partial<Pick<FeatureStore, 'loadStates'>>;

export interface EmbeddingServiceOptions {
  /**
   * The model versions served, one store each; a store's `modelVersion` is the version clients
   * name in `model_version`. Requests for any other version get NOT_FOUND listing these.
   */
  stores: readonly EmbeddingReader[];
  /**
   * Served when a request leaves `model_version` empty.
   * @default the version of the only store (required when there are several)
   */
  defaultModelVersion?: string;
  /** Most user ids in one BatchGetUserEmbeddings call; more is INVALID_ARGUMENT. @default 500 */
  maxBatchSize?: number;
  /**
   * The item tables that ScoreItems and RecommendItems use, by model version (each must be a
   * served version). A served version without one answers those two with FAILED_PRECONDITION.
   * @default none
   */
  itemTables?: ReadonlyMap<string, ItemRetrieval>;
  /** Most item_uris in one ScoreItems call; more is INVALID_ARGUMENT. @default 1000 */
  maxCandidates?: number;
  /** Largest k of one RecommendItems call; more is INVALID_ARGUMENT. @default 1000 */
  maxK?: number;
  /** Errors and feature-store outages (once per outage, not per request). @default silentLogger */
  logger?: Logger;
  /** Told about every call's outcome (metrics). */
  observer?: EmbeddingServiceObserver;
}

/** What the service reports; metrics/ turns it into Prometheus metrics. */
export interface EmbeddingServiceObserver {
  /**
   * Once per call: the method, the status code it answered, how long it took, and the model version
   * it asked for (empty resolved to the default; `UNSERVED_MODEL_VERSION` for any version not served
   * here, so a client's typo cannot grow the metrics without bound).
   */
  onCall?(method: string, code: grpc.status, seconds: number, modelVersion: string): void;
}

export const UNSERVED_MODEL_VERSION = 'unserved';

export const defaultEmbeddingServiceOptions = { maxBatchSize: 500, maxCandidates: 1000, maxK: 1000 } as const;

/** Model versions as they may appear in a request (and in Redis keys). */
export const MODEL_VERSION_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

// One call fans out to one Redis read per user and answers with every vector: a ceiling keeps a
// misconfigured limit from turning a single request into an outage.
const MAX_BATCH_SIZE_CEILING = 10_000;
// The same for scoring: a call's work and response grow with its candidates, and with k.
const MAX_CANDIDATES_CEILING = 100_000;
const MAX_K_CEILING = 10_000;
// What a client is told to do when a version has no item table.
const ITEM_TABLE_HINT = 'start taste serve with --model <that version\'s model directory> (or --item-model for a further version)';
// setTimeout fires at once for delays above 2^31-1 ms; deadlines that far out are "no deadline".
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A failure meant for the client, with its gRPC status. Thrown inside handlers only. */
class StatusError extends Error {
  constructor(
    readonly code: grpc.status,
    details: string,
  ) {
    super(details);
  }
}

/**
 * taste.v1.EmbeddingService over feature stores. The gRPC edge: validation and the translation of
 * project errors into gRPC statuses happen here and nowhere below.
 */
export class EmbeddingService {
  readonly #stores: ReadonlyMap<string, EmbeddingReader>;
  // Changed at runtime by setDefaultVersion (the rollout watcher); each request reads it once.
  #defaultVersion: string;
  readonly #maxBatchSize: number;
  readonly #itemTables: ReadonlyMap<string, ItemRetrieval>;
  readonly #maxCandidates: number;
  readonly #maxK: number;
  readonly #logger: Logger;
  readonly #observer: EmbeddingServiceObserver | undefined;
  #storeDown = false;

  constructor(options: EmbeddingServiceOptions) {
    const stores = new Map<string, EmbeddingReader>();
    for (const store of options.stores) {
      if (!MODEL_VERSION_PATTERN.test(store.modelVersion)) {
        throw configError(`a store's modelVersion "${store.modelVersion}" must match ${MODEL_VERSION_PATTERN}`);
      }
      if (stores.has(store.modelVersion)) {
        throw configError(`two stores serve model version "${store.modelVersion}": pass one store per version`);
      }
      stores.set(store.modelVersion, store);
    }
    if (stores.size === 0) throw configError('stores is empty: pass at least one FeatureStore to serve');
    const versions = [...stores.keys()];
    const defaultVersion = options.defaultModelVersion ?? (versions.length === 1 ? versions[0] : undefined);
    if (defaultVersion === undefined) {
      throw configError(`defaultModelVersion is required with several stores: set it to one of ${versions.join(', ')}`);
    }
    if (!stores.has(defaultVersion)) {
      throw configError(`defaultModelVersion "${defaultVersion}" has no store: set it to one of ${versions.join(', ')}`);
    }
    const maxBatchSize = options.maxBatchSize ?? defaultEmbeddingServiceOptions.maxBatchSize;
    if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1 || maxBatchSize > MAX_BATCH_SIZE_CEILING) {
      throw configError(`maxBatchSize must be an integer in 1..${MAX_BATCH_SIZE_CEILING}, got ${maxBatchSize}`);
    }
    this.#stores = stores;
    this.#defaultVersion = defaultVersion;
    const itemTables = options.itemTables ?? new Map<string, ItemRetrieval>();
    for (const version of itemTables.keys()) {
      if (!stores.has(version)) throw configError(`an item table is given for model version "${version}", which has no store: serve it or drop the table`);
    }
    const maxCandidates = options.maxCandidates ?? defaultEmbeddingServiceOptions.maxCandidates;
    if (!Number.isInteger(maxCandidates) || maxCandidates < 1 || maxCandidates > MAX_CANDIDATES_CEILING) {
      throw configError(`maxCandidates must be an integer in 1..${MAX_CANDIDATES_CEILING}, got ${maxCandidates}`);
    }
    const maxK = options.maxK ?? defaultEmbeddingServiceOptions.maxK;
    if (!Number.isInteger(maxK) || maxK < 1 || maxK > MAX_K_CEILING) {
      throw configError(`maxK must be an integer in 1..${MAX_K_CEILING}, got ${maxK}`);
    }
    this.#maxBatchSize = maxBatchSize;
    this.#itemTables = itemTables;
    this.#maxCandidates = maxCandidates;
    this.#maxK = maxK;
    this.#logger = (options.logger ?? silentLogger).child({ component: 'embedding-service' });
    this.#observer = options.observer;
  }

  get defaultModelVersion(): string {
    return this.#defaultVersion;
  }

  /**
   * Makes `version` the one served when a request leaves `model_version` empty. Requests already
   * running keep the version they resolved; pinned requests are not affected. A version this
   * service has no store for is refused (CONFIG_INVALID) and the default stays as it was: every
   * empty-version request would otherwise fail with NOT_FOUND. Returns whether it changed.
   */
  setDefaultVersion(version: string): boolean {
    if (!this.#stores.has(version)) {
      throw new TasteError(ErrorCodes.CONFIG_INVALID, `model version ${quote(version)} is not served here (served: ${this.modelVersions.join(', ')}): keeping "${this.#defaultVersion}" as the default`);
    }
    if (version === this.#defaultVersion) return false;
    this.#defaultVersion = version;
    return true;
  }

  get modelVersions(): string[] {
    return [...this.#stores.keys()];
  }

  get maxBatchSize(): number {
    return this.#maxBatchSize;
  }

  /** The handlers, keyed as the generated service definition expects. */
  readonly handlers: EmbeddingServiceHandlers = {
    GetUserEmbedding: (call, callback) => {
      void this.#answer('GetUserEmbedding', call, callback, () => this.#getUserEmbedding(call.request));
    },
    BatchGetUserEmbeddings: (call, callback) => {
      void this.#answer('BatchGetUserEmbeddings', call, callback, () => this.#batchGetUserEmbeddings(call.request));
    },
    ScoreItems: (call, callback) => {
      void this.#answer('ScoreItems', call, callback, () => this.#scoreItems(call.request));
    },
    RecommendItems: (call, callback) => {
      void this.#answer('RecommendItems', call, callback, () => this.#recommendItems(call.request));
    },
  };

  addToServer(server: Pick<grpc.Server, 'addService'>): void {
    const generic = loadServiceTypes().taste.v1.EmbeddingService.service;
    // Same methods, paths and request decoding; the responses go through the direct encoders.
    const definition: grpc.ServiceDefinition = {
      GetUserEmbedding: { ...generic.GetUserEmbedding, responseSerialize: encodeGetUserEmbeddingResponse },
      BatchGetUserEmbeddings: { ...generic.BatchGetUserEmbeddings, responseSerialize: encodeBatchGetUserEmbeddingsResponse },
      // protobufjs' encoders: no stored bytes to copy here; 53 µs for 500 packed scores, small beside
      // decoding the request's 500 URIs (bench/results/2026-12-02-ranking/notes.md).
      ScoreItems: generic.ScoreItems,
      RecommendItems: generic.RecommendItems,
    };
    server.addService(definition, this.handlers);
  }

  async #getUserEmbedding(request: GetUserEmbeddingRequest__Output): Promise<ServedGetUserEmbeddingResponse> {
    const store = this.#storeFor(request.modelVersion);
    const { userId } = request;
    if (!isValidUserId(userId)) throw new StatusError(grpc.status.INVALID_ARGUMENT, invalidUserMessage(userId));
    const [read] = await this.#read(store, [userId]);
    if (read?.status === 'corrupt') throw new StatusError(grpc.status.DATA_LOSS, corruptMessage(this.#logger, store, userId, read.reason));
    const stored = read?.status === 'found' ? read.embedding : undefined;
    if (!stored) {
      throw new StatusError(
        grpc.status.NOT_FOUND,
        `no embedding for user ${quote(userId)} in model version "${store.modelVersion}"`,
      );
    }
    return { embedding: toUserEmbedding(userId, store.modelVersion, stored) };
  }

  async #batchGetUserEmbeddings(request: BatchGetUserEmbeddingsRequest__Output): Promise<ServedBatchGetUserEmbeddingsResponse> {
    const { userIds } = request;
    if (userIds.length === 0) {
      throw new StatusError(grpc.status.INVALID_ARGUMENT, 'user_ids is empty: send at least one user id');
    }
    if (userIds.length > this.#maxBatchSize) {
      throw new StatusError(
        grpc.status.INVALID_ARGUMENT,
        `${userIds.length} user ids is over the limit of ${this.#maxBatchSize} per call: split the batch`,
      );
    }
    const store = this.#storeFor(request.modelVersion);
    // Invalid ids never reach Redis; duplicates are read once and answered at each position.
    const toRead = [...new Set(userIds.filter(isValidUserId))];
    const stored = toRead.length === 0 ? [] : await this.#read(store, toRead);
    const reads = new Map<string, EmbeddingRead>();
    toRead.forEach((userId, index) => reads.set(userId, stored[index] ?? { status: 'missing' }));
    const results = userIds.map((userId): ServedUserEmbeddingResult => {
      if (!isValidUserId(userId)) {
        return { userId, error: { code: grpc.status.INVALID_ARGUMENT, message: invalidUserMessage(userId) } };
      }
      const read = reads.get(userId);
      if (read?.status === 'corrupt') {
        return { userId, error: { code: grpc.status.DATA_LOSS, message: corruptMessage(this.#logger, store, userId, read.reason) } };
      }
      if (read?.status !== 'found') {
        return { userId, error: { code: grpc.status.NOT_FOUND, message: 'no embedding for this user and model version' } };
      }
      return { userId, embedding: toUserEmbedding(userId, store.modelVersion, read.embedding) };
    });
    return { results, modelVersion: store.modelVersion };
  }

  async #scoreItems(request: ScoreItemsRequest__Output): Promise<ScoreItemsResponse> {
    const { itemUris } = request;
    if (itemUris.length === 0) throw new StatusError(grpc.status.INVALID_ARGUMENT, 'item_uris is empty: send at least one candidate');
    if (itemUris.length > this.#maxCandidates) {
      throw new StatusError(
        grpc.status.INVALID_ARGUMENT,
        `${itemUris.length} item_uris is over the limit of ${this.#maxCandidates} per call: split the candidates (or raise --max-candidates)`,
      );
    }
    const store = this.#storeFor(request.modelVersion);
    const table = this.#itemTableFor(store.modelVersion);
    const user = await this.#userVector(store, table, request.userId);
    const { vocabulary, scorer } = table;
    const ids = itemUris.map((uri) => vocabulary.idOf(uri));
    const itemErrors: ItemError[] = [];
    ids.forEach((id, index) => {
      const itemUri = itemUris[index]!;
      if (id === PAD_ITEM_ID) itemErrors.push({ index, itemUri, error: { code: grpc.status.INVALID_ARGUMENT, message: 'empty item URI' } });
      else if (id === UNKNOWN_ITEM_ID) {
        itemErrors.push({ index, itemUri, error: { code: grpc.status.NOT_FOUND, message: `not in the item table of model version "${store.modelVersion}"` } });
      }
    });
    // Only the known items are scored; the positions in error stay 0, as the .proto says.
    const known = itemErrors.length === 0 ? ids : ids.filter((id) => id > UNKNOWN_ITEM_ID);
    const knownScores = scorer.score(user, known);
    let scores = knownScores;
    if (itemErrors.length > 0) {
      scores = new Float64Array(ids.length);
      let next = 0;
      ids.forEach((id, index) => {
        if (id > UNKNOWN_ITEM_ID) scores[index] = knownScores[next++]!;
      });
    }
    return { scores: Array.from(scores), itemErrors, modelVersion: store.modelVersion };
  }

  async #recommendItems(request: RecommendItemsRequest__Output): Promise<RecommendItemsResponse> {
    const { k } = request;
    if (k < 1) throw new StatusError(grpc.status.INVALID_ARGUMENT, 'k is 0: ask for at least one item');
    if (k > this.#maxK) throw new StatusError(grpc.status.INVALID_ARGUMENT, `k = ${k} is over the limit of ${this.#maxK} (--max-k)`);
    const kinds = new Set<ItemKind>();
    for (const kind of request.filters?.itemKinds ?? []) {
      if (kind === ItemKinds.UNSPECIFIED || !Object.values(ItemKinds).includes(kind as ItemKind)) {
        throw new StatusError(grpc.status.INVALID_ARGUMENT, `filters.item_kinds: ${JSON.stringify(kind)} is not an item kind: name TRACK, PODCAST_EPISODE or AUDIOBOOK_CHAPTER`);
      }
      kinds.add(kind as ItemKind);
    }
    const store = this.#storeFor(request.modelVersion);
    const table = this.#itemTableFor(store.modelVersion);
    const excludeHistory = request.filters?.excludeHistory === true;
    if (excludeHistory && store.loadStates === undefined) {
      throw new StatusError(grpc.status.FAILED_PRECONDITION, `exclude_history: the store of model version "${store.modelVersion}" cannot read histories`);
    }
    // Both reads in one round trip's time.
    const [user, history] = await Promise.all([
      this.#userVector(store, table, request.userId),
      excludeHistory ? this.#historyOf(store, request.userId) : Promise.resolve(new Set<number>()),
    ]);
    const { items, approximate } = table.recommend(user, k, { kinds, exclude: history });
    return {
      items: items.map(({ id, score }) => ({ itemUri: table.vocabulary.uriOf(id) ?? '', score, kind: table.kindOf(id) })),
      modelVersion: store.modelVersion,
      approximate,
    };
  }

  /** The user's embedding, checked against the table it is to be scored with. */
  async #userVector(store: EmbeddingReader, table: ItemRetrieval, userId: string): Promise<Float32Array> {
    if (!isValidUserId(userId)) throw new StatusError(grpc.status.INVALID_ARGUMENT, invalidUserMessage(userId));
    const [read] = await this.#read(store, [userId]);
    if (read?.status === 'corrupt') throw new StatusError(grpc.status.DATA_LOSS, corruptMessage(this.#logger, store, userId, read.reason));
    if (read?.status !== 'found') {
      throw new StatusError(grpc.status.NOT_FOUND, `no embedding for user ${quote(userId)} in model version "${store.modelVersion}"`);
    }
    const { vector } = read.embedding;
    if (vector.length !== table.scorer.dim) {
      this.#logger.error('stored embedding does not match the item table', { userId, modelVersion: store.modelVersion, dimension: vector.length, tableDimension: table.scorer.dim });
      throw new StatusError(
        grpc.status.FAILED_PRECONDITION,
        `the stored embedding has ${vector.length} dimensions but the item table of model version "${store.modelVersion}" ${table.scorer.dim}: is --model the directory of that version?`,
      );
    }
    return vector;
  }

  /** The item ids of the user's stored window (empty for a user without state). */
  async #historyOf(store: EmbeddingReader, userId: string): Promise<Set<number>> {
    if (!isValidUserId(userId)) return new Set(); // #userVector answers INVALID_ARGUMENT
    const states = await store.loadStates!([userId]);
    return new Set((states.get(userId)?.window ?? []).map((event) => event.itemId));
  }

  #itemTableFor(version: string): ItemRetrieval {
    const table = this.#itemTables.get(version);
    if (!table) {
      const loaded = [...this.#itemTables.keys()];
      throw new StatusError(
        grpc.status.FAILED_PRECONDITION,
        `model version "${version}" is served without its item table, so items cannot be scored for it: ${ITEM_TABLE_HINT}` +
          (loaded.length > 0 ? `; item tables loaded: ${loaded.join(', ')}` : ''),
      );
    }
    return table;
  }

  /** The version a request names: its own, or the default when it leaves the field empty. */
  #resolveVersion(requested: string): string {
    return requested === '' ? this.#defaultVersion : requested;
  }

  #storeFor(requested: string): EmbeddingReader {
    const version = this.#resolveVersion(requested);
    if (!MODEL_VERSION_PATTERN.test(version)) {
      throw new StatusError(
        grpc.status.INVALID_ARGUMENT,
        `model_version ${quote(version)} is not valid: use 1-64 of A-Z a-z 0-9 . _ -, or leave it empty for the default`,
      );
    }
    const store = this.#stores.get(version);
    if (!store) {
      throw new StatusError(
        grpc.status.NOT_FOUND,
        `model version "${version}" is not served here; served: ${this.modelVersions.join(', ')} ` +
          `(empty model_version means "${this.#defaultVersion}")`,
      );
    }
    return store;
  }

  async #read(store: EmbeddingReader, userIds: string[]): Promise<EmbeddingRead[]> {
    const stored = await store.readEmbeddingResults(userIds);
    if (this.#storeDown) {
      this.#storeDown = false;
      this.#logger.info('feature store answers again');
    }
    return stored;
  }

  async #answer<Request, Response>(
    method: string,
    call: grpc.ServerUnaryCall<Request, Response>,
    callback: grpc.sendUnaryData<Response>,
    work: () => Promise<Response>,
  ): Promise<void> {
    const started = performance.now();
    const version = this.#versionLabel((call.request as { modelVersion?: unknown }).modelVersion);
    let response: Response;
    try {
      response = await withinDeadline(call.getDeadline(), work);
    } catch (error) {
      const status = this.#toStatus(method, error);
      this.#observer?.onCall?.(method, status.code ?? grpc.status.UNKNOWN, (performance.now() - started) / 1000, version);
      callback(status);
      return;
    }
    this.#observer?.onCall?.(method, grpc.status.OK, (performance.now() - started) / 1000, version);
    callback(null, response);
  }

  #versionLabel(requested: unknown): string {
    if (requested === undefined) return this.#defaultVersion;
    if (typeof requested !== 'string') return UNSERVED_MODEL_VERSION;
    const version = this.#resolveVersion(requested);
    return this.#stores.has(version) ? version : UNSERVED_MODEL_VERSION;
  }

  #toStatus(method: string, error: unknown): Partial<grpc.StatusObject> {
    if (error instanceof StatusError) return { code: error.code, details: error.message };
    if (error instanceof TasteError && error.code === ErrorCodes.STORE_UNAVAILABLE) {
      // Once per outage: during one, every request fails the same way.
      if (!this.#storeDown) {
        this.#storeDown = true;
        this.#logger.warn('feature store unavailable; answering UNAVAILABLE', { method, error: describeError(error) });
      }
      return { code: grpc.status.UNAVAILABLE, details: 'the feature store is unavailable; retry with backoff' };
    }
    this.#logger.error('request failed', {
      method,
      error: describeError(error),
      ...(error instanceof TasteError ? { code: error.code } : {}),
    });
    return { code: grpc.status.INTERNAL, details: `internal error in ${EMBEDDING_SERVICE_NAME}/${method} (logged)` };
  }
}

/**
 * Runs `work` but gives up with DEADLINE_EXCEEDED when the call's deadline passes first, so a slow
 * Redis never holds a handler past the point where the client stopped listening. The Redis read
 * itself is not cancelled; its command timeout bounds it.
 */
export async function withinDeadline<T>(deadline: grpc.Deadline, work: () => Promise<T>): Promise<T> {
  const remaining = (deadline instanceof Date ? deadline.getTime() : deadline) - Date.now();
  if (remaining <= 0) throw deadlineExceeded();
  const pending = work();
  if (!(remaining <= MAX_TIMER_MS)) return pending; // Infinity (no deadline) lands here too
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(deadlineExceeded()), remaining);
  });
  try {
    return await Promise.race([pending, expired]);
  } finally {
    clearTimeout(timer);
  }
}

function deadlineExceeded(): StatusError {
  return new StatusError(grpc.status.DEADLINE_EXCEEDED, 'deadline exceeded before the feature store answered');
}

function toUserEmbedding(userId: string, modelVersion: string, stored: StoredEmbedding): ServedEmbedding {
  return {
    userId,
    modelVersion,
    vector: stored.vector,
    updatedTimeMs: stored.updatedMs,
    lastEventTimeMs: stored.lastEventMs,
    eventsInWindow: stored.eventsInWindow,
  };
}

/** Logs a corrupt stored embedding (the operator must see it) and says what the caller gets. */
function corruptMessage(logger: Logger, store: EmbeddingReader, userId: string, reason: string): string {
  logger.error('stored embedding is corrupt; answering DATA_LOSS for this user', { userId, modelVersion: store.modelVersion, reason });
  return 'the stored embedding for this user is corrupt (logged); it is rewritten by the user\'s next event';
}

function invalidUserMessage(userId: string): string {
  return `user id ${quote(userId)} is not valid: it must match ${USER_ID_PATTERN}`;
}

/** Echoes client input in messages, bounded so a huge id cannot bloat a status. */
function quote(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
}

function configError(message: string): TasteError {
  return new TasteError(ErrorCodes.CONFIG_INVALID, `EmbeddingService: ${message}`);
}
