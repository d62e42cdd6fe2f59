import { decodePlayEvent, decodeSearchEvent } from '../proto/event-codec.js';
import { playEventKind, EventKinds, Streams, tokenizeQuery, type WindowEvent } from '../model/features.js';
import type { ItemVocabulary } from '../model/model-bundle.js';
import type { SourcedEvent } from '../updater/updater.js';
import {
  defaultValidationLimits,
  type Rejection,
  RejectReasons,
  validatePlayEvent,
  validateSearchEvent,
  type ValidationLimits,
} from './event-validation.js';

export const EventTypes = { PLAY: 'play', SEARCH: 'search' } as const;
export type EventType = (typeof EventTypes)[keyof typeof EventTypes];

export interface RawMessage {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
}

export interface FeaturizerOptions {
  vocabulary: ItemVocabulary;
  queryTokens: number;
  queryBuckets: number;
  /** Largest payload accepted. @default 65536 */
  maxMessageBytes?: number;
  limits?: ValidationLimits;
}

export type FeaturizeResult = { ok: true; event: SourcedEvent } | { ok: false; rejection: Rejection };

/** Kafka message → validated, featurized event, or the reason it is refused. Never throws. */
export class EventFeaturizer {
  readonly #options: Required<FeaturizerOptions>;

  constructor(options: FeaturizerOptions) {
    this.#options = { maxMessageBytes: 65_536, limits: defaultValidationLimits, ...options };
  }

  featurize(type: EventType, message: RawMessage, nowMs: number): FeaturizeResult {
    const { value } = message;
    if (!value || value.length === 0) return fail(RejectReasons.UNDECODABLE, 'empty payload');
    if (value.length > this.#options.maxMessageBytes) {
      return fail(RejectReasons.PAYLOAD_TOO_LARGE, `${value.length} bytes > ${this.#options.maxMessageBytes}`);
    }
    const key = message.key === null ? null : message.key.toString('utf8');
    const offset = Number(message.offset);
    const base = { stream: type === EventTypes.PLAY ? Streams.PLAY : Streams.SEARCH, partition: message.partition, offset };
    try {
      if (type === EventTypes.PLAY) {
        const play = decodePlayEvent(value);
        const rejection = validatePlayEvent(play, key, nowMs, this.#options.limits);
        if (rejection) return { ok: false, rejection };
        const event: WindowEvent = {
          ...base,
          eventTimeMs: play.eventTimeMs,
          itemId: this.#options.vocabulary.idOf(play.itemUri),
          kind: playEventKind(play.endReason, play.msPlayed, play.itemDurationMs),
          queryTokens: [],
        };
        return { ok: true, event: { userId: play.userId, topic: message.topic, event } };
      }
      const search = decodeSearchEvent(value);
      const rejection = validateSearchEvent(search, key, nowMs, this.#options.limits);
      if (rejection) return { ok: false, rejection };
      const event: WindowEvent = {
        ...base,
        eventTimeMs: search.eventTimeMs,
        itemId: this.#options.vocabulary.idOf(search.clickedItemUri),
        kind: EventKinds.SEARCH,
        queryTokens: tokenizeQuery(search.query, this.#options.queryTokens, this.#options.queryBuckets),
      };
      return { ok: true, event: { userId: search.userId, topic: message.topic, event } };
    } catch (error) {
      return fail(RejectReasons.UNDECODABLE, `not a ${type} event: ${(error as Error).message}`);
    }
  }
}

function fail(reason: Rejection['reason'], detail: string): FeaturizeResult {
  return { ok: false, rejection: { reason, detail } };
}
