import * as grpc from '@grpc/grpc-js';
import type { BatchGetUserEmbeddingsRequest } from '../proto/generated/taste/v1/BatchGetUserEmbeddingsRequest.js';
import type { BatchGetUserEmbeddingsResponse__Output } from '../proto/generated/taste/v1/BatchGetUserEmbeddingsResponse.js';
import type { EmbeddingServiceClient } from '../proto/generated/taste/v1/EmbeddingService.js';
import type { GetUserEmbeddingRequest } from '../proto/generated/taste/v1/GetUserEmbeddingRequest.js';
import type { GetUserEmbeddingResponse__Output } from '../proto/generated/taste/v1/GetUserEmbeddingResponse.js';
import { ErrorCodes, TasteError } from '../common/errors.js';
import type { RecommendItemsRequest } from '../proto/generated/taste/v1/RecommendItemsRequest.js';
import type { RecommendItemsResponse__Output } from '../proto/generated/taste/v1/RecommendItemsResponse.js';
import type { ScoreItemsRequest } from '../proto/generated/taste/v1/ScoreItemsRequest.js';
import type { ScoreItemsResponse__Output } from '../proto/generated/taste/v1/ScoreItemsResponse.js';
import { loadServiceTypes } from './service-definition.js';

export type { EmbeddingServiceClient };

/** Used by the promise helpers when the caller names no deadline. */
export const DEFAULT_CALL_DEADLINE_MS = 1000;

/**
 * A typed EmbeddingService client (for tests, the demo and benchmarks; ranking services may use
 * any gRPC stack). Plaintext unless `credentials` says otherwise. Close it with `client.close()`.
 */
export function createEmbeddingClient(
  address: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  options?: grpc.ChannelOptions,
): EmbeddingServiceClient {
  const { EmbeddingService } = loadServiceTypes().taste.v1;
  return new EmbeddingService(address, credentials, options);
}

/** Rejects with the call's `grpc.ServiceError` (`code`, `details`) on any non-OK status. */
export function getUserEmbedding(
  client: EmbeddingServiceClient,
  request: GetUserEmbeddingRequest,
  deadlineMs: number = DEFAULT_CALL_DEADLINE_MS,
  metadata: grpc.Metadata = new grpc.Metadata(),
): Promise<GetUserEmbeddingResponse__Output> {
  return new Promise((resolve, reject) => {
    client.GetUserEmbedding(request, metadata, { deadline: Date.now() + deadlineMs }, (error, response) =>
      error || !response ? reject(error ?? new TasteError(ErrorCodes.SERVING_CALL, 'GetUserEmbedding: no response')) : resolve(response),
    );
  });
}

/** Rejects with the call's `grpc.ServiceError`; per-user failures are in `results[i].error`. */
export function batchGetUserEmbeddings(
  client: EmbeddingServiceClient,
  request: BatchGetUserEmbeddingsRequest,
  deadlineMs: number = DEFAULT_CALL_DEADLINE_MS,
  metadata: grpc.Metadata = new grpc.Metadata(),
): Promise<BatchGetUserEmbeddingsResponse__Output> {
  return new Promise((resolve, reject) => {
    client.BatchGetUserEmbeddings(request, metadata, { deadline: Date.now() + deadlineMs }, (error, response) =>
      error || !response ? reject(error ?? new TasteError(ErrorCodes.SERVING_CALL, 'BatchGetUserEmbeddings: no response')) : resolve(response),
    );
  });
}

/** Rejects with the call's `grpc.ServiceError`; per-item failures are in `results[i].error`. */
export function scoreItems(
  client: EmbeddingServiceClient,
  request: ScoreItemsRequest,
  deadlineMs: number = DEFAULT_CALL_DEADLINE_MS,
  metadata: grpc.Metadata = new grpc.Metadata(),
): Promise<ScoreItemsResponse__Output> {
  return new Promise((resolve, reject) => {
    client.ScoreItems(request, metadata, { deadline: Date.now() + deadlineMs }, (error, response) =>
      error || !response ? reject(error ?? new TasteError(ErrorCodes.SERVING_CALL, 'ScoreItems: no response')) : resolve(response),
    );
  });
}

/** Rejects with the call's `grpc.ServiceError` on any non-OK status. */
export function recommendItems(
  client: EmbeddingServiceClient,
  request: RecommendItemsRequest,
  deadlineMs: number = DEFAULT_CALL_DEADLINE_MS,
  metadata: grpc.Metadata = new grpc.Metadata(),
): Promise<RecommendItemsResponse__Output> {
  return new Promise((resolve, reject) => {
    client.RecommendItems(request, metadata, { deadline: Date.now() + deadlineMs }, (error, response) =>
      error || !response ? reject(error ?? new TasteError(ErrorCodes.SERVING_CALL, 'RecommendItems: no response')) : resolve(response),
    );
  });
}
