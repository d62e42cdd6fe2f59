import type { Producer } from 'kafkajs';
import type { ErasureRequest } from '../events/erasure-request.js';
import { encodeErasureRequest } from '../proto/erasure-codec.js';
import { kafkaError } from './kafka.js';

/**
 * Produces erasure requests to their topic, keyed by user like the events, and acknowledged by
 * every in-sync replica: once this resolves, the stream job will apply them.
 */
export async function sendErasureRequests(producer: Producer, topic: string, requests: readonly ErasureRequest[]): Promise<void> {
  if (requests.length === 0) return;
  try {
    await producer.send({
      topic,
      acks: -1,
      messages: requests.map((request) => ({ key: request.userId, value: encodeErasureRequest(request) })),
    });
  } catch (error) {
    throw kafkaError(`could not send ${requests.length} erasure requests to ${topic}`, error, { canRetry: true });
  }
}
