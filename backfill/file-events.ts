import { defaultValidationLimits, type Rejection, validatePlayEvent, validateSearchEvent, type ValidationLimits } from '../consumers/event-validation.js';
import { EventKinds, playEventKind, Streams, tokenizeQuery, type WindowEvent } from '../model/features.js';
import type { ItemVocabulary } from '../model/model-bundle.js';
import type { SimEvent } from '../simulator/sim-event.js';
import type { SourcedEvent } from '../updater/updater.js';

export interface FileFeaturizerOptions {
  vocabulary: ItemVocabulary;
  queryTokens: number;
  queryBuckets: number;
  limits?: ValidationLimits;
}

export type FileEventResult = { ok: true; event: SourcedEvent } | { ok: false; rejection: Rejection };

/**
 * A parsed file event (the protobuf's fields, as the simulator's JSONL holds them) → validated,
 * featurized event: the validators of consumers/event-validation.ts and the featurization of
 * model/features.ts, exactly as consumers/event-featurizer.ts applies them to a Kafka record (a
 * test checks the two agree). A file has no message key: the user id is its own key.
 */
export class FileEventFeaturizer {
  readonly #options: Required<FileFeaturizerOptions>;

  constructor(options: FileFeaturizerOptions) {
    this.#options = { limits: defaultValidationLimits, ...options };
  }

  featurize(simulated: SimEvent, topic: string, partition: number, offset: number, nowMs: number): FileEventResult {
    const { vocabulary, limits } = this.#options;
    if (simulated.kind === 'play') {
      const play = simulated.event;
      const rejection = validatePlayEvent(play, play.userId, nowMs, limits);
      if (rejection) return { ok: false, rejection };
      const event: WindowEvent = {
        stream: Streams.PLAY,
        partition,
        offset,
        eventTimeMs: play.eventTimeMs,
        itemId: vocabulary.idOf(play.itemUri),
        kind: playEventKind(play.endReason, play.msPlayed, play.itemDurationMs),
        queryTokens: [],
      };
      return { ok: true, event: { userId: play.userId, topic, event } };
    }
    const search = simulated.event;
    const rejection = validateSearchEvent(search, search.userId, nowMs, limits);
    if (rejection) return { ok: false, rejection };
    const event: WindowEvent = {
      stream: Streams.SEARCH,
      partition,
      offset,
      eventTimeMs: search.eventTimeMs,
      itemId: vocabulary.idOf(search.clickedItemUri),
      kind: EventKinds.SEARCH,
      queryTokens: tokenizeQuery(search.query, this.#options.queryTokens, this.#options.queryBuckets),
    };
    return { ok: true, event: { userId: search.userId, topic, event } };
  }
}
