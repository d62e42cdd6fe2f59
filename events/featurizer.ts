import { decodePlayEvent, decodeSearchEvent } from '../proto/event-codec.js';
import { type EventRecord, type EventType, EventTypes } from './event-record.js';
import { playEventKind, tokenizeQuery } from './featurization.js';
import {
  defaultValidationLimits,
  type Rejection,
  RejectReasons,
  validatePlayEvent,
  validateSearchEvent,
  type ValidationLimits,
} from './validation.js';
import { EventKinds, type SourcedEvent, Streams, type WindowEvent } from './window-event.js';

/** Item URI → the model's item id; model/model-bundle.ts's vocabulary is one. */
export interface ItemVocabulary {
  idOf(uri: string): number;
}

/** A Kafka record as the featurizer needs it (the consumer's and the backfill's Kafka reader's). */
export interface RawMessage {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
}

/** How one model turns an event into features: its item ids and its query tokenization. */
export interface FeatureSpace {
  vocabulary: ItemVocabulary;
  queryTokens: number;
  queryBuckets: number;
}

export interface FeaturizerOptions extends FeatureSpace {
  /**
   * Shadow models' feature spaces: each accepted event is also featurized in each of them
   * (SourcedEvent.shadowEvents), from the one decode and validation. @default none
   */
  shadows?: readonly FeatureSpace[];
  /** Largest Kafka payload accepted. @default 65536 */
  maxMessageBytes?: number;
  limits?: ValidationLimits;
}

export type FeaturizeResult = { ok: true; event: SourcedEvent } | { ok: false; rejection: Rejection };

/**
 * An event → validated, featurized event, or the reason it is refused. Never throws. Two entry
 * points, one path: `featurize` decodes Kafka bytes (the stream, a Kafka-range backfill),
 * `featurizeRecord` takes a parsed file record (a file backfill); both then validate and featurize
 * the same protobuf object the same way.
 */
export class EventFeaturizer {
  readonly #options: Required<FeaturizerOptions>;

  constructor(options: FeaturizerOptions) {
    this.#options = { maxMessageBytes: 65_536, limits: defaultValidationLimits, shadows: [], ...options };
  }

  /** A Kafka record, keyed by user id, whose value is a `type` payload. */
  featurize(type: EventType, message: RawMessage, nowMs: number): FeaturizeResult {
    const { value } = message;
    if (!value || value.length === 0) return fail(RejectReasons.UNDECODABLE, 'empty payload');
    if (value.length > this.#options.maxMessageBytes) {
      return fail(RejectReasons.PAYLOAD_TOO_LARGE, `${value.length} bytes > ${this.#options.maxMessageBytes}`);
    }
    let record: EventRecord;
    try {
      record = type === EventTypes.PLAY ? { kind: type, event: decodePlayEvent(value) } : { kind: type, event: decodeSearchEvent(value) };
    } catch (error) {
      return fail(RejectReasons.UNDECODABLE, `not a ${type} event: ${(error as Error).message}`);
    }
    const key = message.key === null ? null : message.key.toString('utf8');
    return this.#accept(record, key, message.topic, message.partition, Number(message.offset), nowMs);
  }

  /** A file record at `offset` of the file's (topic, partition). A file has no message key: the user id is its own key. */
  featurizeRecord(record: EventRecord, topic: string, partition: number, offset: number, nowMs: number): FeaturizeResult {
    return this.#accept(record, record.event.userId, topic, partition, offset, nowMs);
  }

  #accept(record: EventRecord, key: string | null, topic: string, partition: number, offset: number, nowMs: number): FeaturizeResult {
    const { limits, shadows } = this.#options;
    const rejection =
      record.kind === EventTypes.PLAY ? validatePlayEvent(record.event, key, nowMs, limits) : validateSearchEvent(record.event, key, nowMs, limits);
    if (rejection) return { ok: false, rejection };
    const event = featurizeIn(this.#options, record, partition, offset);
    const sourced: SourcedEvent = { userId: record.event.userId, topic, event };
    if (shadows.length > 0) sourced.shadowEvents = shadows.map((space) => featurizeIn(space, record, partition, offset));
    return { ok: true, event: sourced };
  }
}

/** A validated record's features in one model's space. */
function featurizeIn(space: FeatureSpace, record: EventRecord, partition: number, offset: number): WindowEvent {
  if (record.kind === EventTypes.PLAY) {
    const play = record.event;
    return {
      stream: Streams.PLAY,
      partition,
      offset,
      eventTimeMs: play.eventTimeMs,
      itemId: space.vocabulary.idOf(play.itemUri),
      kind: playEventKind(play.endReason, play.msPlayed, play.itemDurationMs),
      queryTokens: [],
    };
  }
  const search = record.event;
  return {
    stream: Streams.SEARCH,
    partition,
    offset,
    eventTimeMs: search.eventTimeMs,
    itemId: space.vocabulary.idOf(search.clickedItemUri),
    kind: EventKinds.SEARCH,
    queryTokens: tokenizeQuery(search.query, space.queryTokens, space.queryBuckets),
  };
}

function fail(reason: Rejection['reason'], detail: string): FeaturizeResult {
  return { ok: false, rejection: { reason, detail } };
}
