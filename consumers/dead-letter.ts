import type { Producer } from 'kafkajs';
import { RejectReasons } from '../events/validation.js';
import { UpdateRejections } from '../updater/updater.js';

/**
 * Every reason a record is dead-lettered, the value of its `taste-dlq-reason` header: the event
 * was refused (events/validation.ts), or the model could not be applied to it (updater).
 */
export const DeadLetterReasons = { ...RejectReasons, ...UpdateRejections } as const;
export type DeadLetterReason = (typeof DeadLetterReasons)[keyof typeof DeadLetterReasons];

/** Where a refused message came from; all of it goes in the dead-letter record's headers. */
export interface DeadLetter {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  timestamp: string;
  rejection: { reason: DeadLetterReason; detail: string };
}

export const DeadLetterHeaders = {
  reason: 'taste-dlq-reason',
  detail: 'taste-dlq-detail',
  topic: 'taste-source-topic',
  partition: 'taste-source-partition',
  offset: 'taste-source-offset',
  timestamp: 'taste-source-timestamp',
} as const;

/**
 * Sends refused messages, unchanged, to the dead-letter topic. Awaited before the source offset
 * is resolved: if this write fails, the batch fails and the offset is not committed.
 */
export class DeadLetterWriter {
  constructor(
    readonly producer: Producer,
    readonly topic: string,
  ) {}

  async send(letters: readonly DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    await this.producer.send({
      topic: this.topic,
      acks: -1,
      messages: letters.map((letter) => ({
        key: letter.key,
        value: letter.value,
        headers: {
          [DeadLetterHeaders.reason]: letter.rejection.reason,
          [DeadLetterHeaders.detail]: letter.rejection.detail,
          [DeadLetterHeaders.topic]: letter.topic,
          [DeadLetterHeaders.partition]: String(letter.partition),
          [DeadLetterHeaders.offset]: letter.offset,
          [DeadLetterHeaders.timestamp]: letter.timestamp,
        },
      })),
    });
  }
}
