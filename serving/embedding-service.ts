import * as grpc from '@grpc/grpc-js';
import { describeError, ErrorCodes, TasteError } from '../common/errors.js';
import { silentLogger, type Logger } from '../common/logger.js';
import type { EmbeddingRead, FeatureStore, StoredEmbedding } from '../featurestore/feature-store.js';
import { isValidUserId, USER_ID_PATTERN } from '../events/user-id.js';
import type { BatchGetUserEmbeddingsRequest__Output } from '../proto/generated/taste/v1/BatchGetUserEmbeddingsRequest.js';
import type { GetUserEmbeddingRequest__Output } from '../proto/generated/taste/v1/GetUserEmbeddingRequest.js';
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
}

/** What serving needs from a feature store: reads only, so a test or a cache can stand in. */
export type EmbeddingReader = Pick<FeatureStore, 'modelVersion' | 'readEmbeddingResults'>;

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
  /** Errors and feature-store outages (once per outage, not per request). @default silentLogger */
  logger?: Logger;
  /** Told about every call's outcome (metrics). */
  observer?: EmbeddingServiceObserver;
}

/** What the service reports; metrics/ turns it into Prometheus metrics. */
export interface EmbeddingServiceObserver {
  /** Once per call: the method, the status code it answered, how long it took. */
  onCall?(method: string, code: grpc.status, seconds: number): void;
}

export const defaultEmbeddingServiceOptions = { maxBatchSize: 500 } as const;

/** Model versions as they may appear in a request (and in Redis keys). */
export const MODEL_VERSION_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

// One call fans out to one Redis read per user and answers with every vector: a ceiling keeps a
// misconfigured limit from turning a single request into an outage.
const MAX_BATCH_SIZE_CEILING = 10_000;
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
  readonly #defaultVersion: string;
  readonly #maxBatchSize: number;
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
    this.#maxBatchSize = maxBatchSize;
    this.#logger = (options.logger ?? silentLogger).child({ component: 'embedding-service' });
    this.#observer = options.observer;
  }

  get defaultModelVersion(): string {
    return this.#defaultVersion;
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
  };

  addToServer(server: Pick<grpc.Server, 'addService'>): void {
    const generic = loadServiceTypes().taste.v1.EmbeddingService.service;
    // Same methods, paths and request decoding; the responses go through the direct encoders.
    const definition: grpc.ServiceDefinition = {
      GetUserEmbedding: { ...generic.GetUserEmbedding, responseSerialize: encodeGetUserEmbeddingResponse },
      BatchGetUserEmbeddings: { ...generic.BatchGetUserEmbeddings, responseSerialize: encodeBatchGetUserEmbeddingsResponse },
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

  #storeFor(requested: string): EmbeddingReader {
    const version = requested === '' ? this.#defaultVersion : requested;
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
    let response: Response;
    try {
      response = await withinDeadline(call.getDeadline(), work);
    } catch (error) {
      const status = this.#toStatus(method, error);
      this.#observer?.onCall?.(method, status.code ?? grpc.status.UNKNOWN, (performance.now() - started) / 1000);
      callback(status);
      return;
    }
    this.#observer?.onCall?.(method, grpc.status.OK, (performance.now() - started) / 1000);
    callback(null, response);
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
