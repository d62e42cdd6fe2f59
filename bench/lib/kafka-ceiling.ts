import type { EachBatchPayload, Kafka } from 'kafkajs';
import type { StreamTopics } from '../../consumers/stream-consumer.js';
import { sleep } from './stats.js';
import { unique } from './env.js';

export interface ConsumeResult {
  messages: number;
  /** From joining the group to the last expected message handled. */
  ms: number;
  eventsPerS: number;
}

/**
 * A kafkajs consumer configured like consumers/stream-consumer.ts (fresh group, from the
 * beginning, eachBatch, same fetch sizes and concurrency) that does nothing with the messages but
 * `work` (default: nothing) and resolves/commits offsets. Its rate is the Kafka ceiling.
 */
export async function consumeAll(
  kafka: Kafka,
  topics: Pick<StreamTopics, 'play' | 'search'>,
  expected: number,
  options: { partitionsConsumedConcurrently?: number; work?: (payload: EachBatchPayload) => void; timeoutMs?: number } = {},
): Promise<ConsumeResult> {
  const consumer = kafka.consumer({
    groupId: unique('noop'),
    sessionTimeout: 30_000,
    heartbeatInterval: 3_000,
    allowAutoTopicCreation: false,
    maxBytesPerPartition: 1_048_576,
  });
  let joinedAt = Number.NaN;
  let doneAt = Number.NaN;
  let messages = 0;
  consumer.on(consumer.events.GROUP_JOIN, () => {
    if (Number.isNaN(joinedAt)) joinedAt = performance.now();
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topics.play, topics.search], fromBeginning: true });
    await consumer.run({
      autoCommit: true,
      autoCommitInterval: 1_000,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: options.partitionsConsumedConcurrently ?? 2,
      eachBatch: async (payload) => {
        const { batch } = payload;
        if (batch.messages.length === 0) return;
        options.work?.(payload);
        payload.resolveOffset(batch.messages[batch.messages.length - 1]!.offset);
        await payload.heartbeat();
        await payload.commitOffsetsIfNecessary();
        messages += batch.messages.length;
        if (messages >= expected && Number.isNaN(doneAt)) doneAt = performance.now();
      },
    });
    const deadline = Date.now() + (options.timeoutMs ?? 300_000);
    while (Number.isNaN(doneAt)) {
      if (Date.now() > deadline) throw new Error(`kafka ceiling: consumed ${messages} of ${expected} messages before the timeout`);
      await sleep(5);
    }
  } finally {
    await consumer.disconnect();
  }
  const ms = doneAt - joinedAt;
  return { messages, ms, eventsPerS: (messages * 1000) / ms };
}
