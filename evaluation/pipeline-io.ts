// The two ends of a through-the-pipeline evaluation: events go in through Kafka, embeddings come
// out of the gRPC service. What happens between is the running `taste consume` and `taste serve`.
import { status } from '@grpc/grpc-js';
import { ErrorCodes, TasteError } from '../common/errors.js';
import type { EventProducer, TasteEvent } from '../consumers/event-producer.js';
import { batchGetUserEmbeddings, type EmbeddingServiceClient } from '../serving/client.js';
import { readEventsJsonl } from '../events/jsonl.js';
import type { ServedEmbedding } from './pipeline-comparison.js';

/** Produces every event of a JSONL file, in file order, in acknowledged batches. Returns the count. */
export async function replayEvents(path: string, producer: EventProducer, onProgress: (sent: number) => void, batchSize = 1000): Promise<number> {
  let batch: TasteEvent[] = [];
  let sent = 0;
  for await (const { event } of readEventsJsonl(path)) {
    batch.push(event);
    if (batch.length >= batchSize) {
      await producer.send(batch);
      sent += batch.length;
      batch = [];
      onProgress(sent);
    }
  }
  if (batch.length > 0) await producer.send(batch);
  return sent + batch.length;
}

/**
 * Fetches the embeddings of `userIds` for `modelVersion` over gRPC, `chunk` users per
 * BatchGetUserEmbeddings call. Users the service reports as not found are absent from the map; any
 * other per-user error fails the fetch.
 */
export async function fetchEmbeddings(
  client: EmbeddingServiceClient,
  userIds: readonly string[],
  modelVersion: string,
  chunk = 100,
  deadlineMs = 10_000,
): Promise<Map<string, ServedEmbedding>> {
  const served = new Map<string, ServedEmbedding>();
  for (let i = 0; i < userIds.length; i += chunk) {
    const response = await batchGetUserEmbeddings(client, { userIds: userIds.slice(i, i + chunk), modelVersion }, deadlineMs).catch(
      (error: unknown) => {
        throw servingCallFailed(error);
      },
    );
    for (const result of response.results) {
      if (result.embedding) {
        served.set(result.userId, { vector: Float32Array.from(result.embedding.vector), eventsInWindow: result.embedding.eventsInWindow });
      } else if (result.error && result.error.code !== status.NOT_FOUND) {
        throw new TasteError(
          ErrorCodes.SERVING_CALL,
          `BatchGetUserEmbeddings: user ${result.userId}: code ${result.error.code} ${result.error.message}`,
          { canRetry: RETRYABLE_STATUSES.has(result.error.code) },
        );
      }
    }
  }
  return served;
}

// The statuses a repeated call may get past: the server or Redis was briefly away, or busy.
const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([status.UNAVAILABLE, status.DEADLINE_EXCEEDED, status.RESOURCE_EXHAUSTED]);

/** A failed gRPC call to `taste serve`, as the project's error: the status in the message, the call as cause. */
function servingCallFailed(error: unknown): TasteError {
  if (error instanceof TasteError) return error;
  const code = typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : undefined;
  const message = error instanceof Error ? error.message : String(error);
  return new TasteError(ErrorCodes.SERVING_CALL, `BatchGetUserEmbeddings failed: ${message}`, {
    cause: error,
    canRetry: code !== undefined && RETRYABLE_STATUSES.has(code),
  });
}
