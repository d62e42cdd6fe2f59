import type { Producer } from 'kafkajs';
import { encodePlayEvent, encodeSearchEvent } from '../proto/event-codec.js';
import type { PlayEvent } from '../proto/generated/taste/v1/PlayEvent.js';
import type { SearchEvent } from '../proto/generated/taste/v1/SearchEvent.js';
import type { StreamTopics } from './stream-consumer.js';

export type TasteEvent = { kind: 'play'; event: PlayEvent } | { kind: 'search'; event: SearchEvent };

/**
 * Writes events to their topics as protobuf, keyed by user id (so a user's events stay ordered in
 * one partition). `send` resolves once every record is acknowledged by all in-sync replicas:
 * callers get backpressure by awaiting it.
 */
export class EventProducer {
  constructor(
    readonly producer: Producer,
    readonly topics: Pick<StreamTopics, 'play' | 'search'>,
  ) {}

  async send(events: readonly TasteEvent[]): Promise<void> {
    const plays = [];
    const searches = [];
    for (const item of events) {
      if (item.kind === 'play') plays.push({ key: item.event.userId ?? null, value: encodePlayEvent(item.event) });
      else searches.push({ key: item.event.userId ?? null, value: encodeSearchEvent(item.event) });
    }
    const topicMessages = [];
    if (plays.length > 0) topicMessages.push({ topic: this.topics.play, messages: plays });
    if (searches.length > 0) topicMessages.push({ topic: this.topics.search, messages: searches });
    if (topicMessages.length > 0) await this.producer.sendBatch({ topicMessages, acks: -1 });
  }
}
