import { ErrorCodes, TasteError } from '../common/errors.js';
import { type EventType, EventTypes } from '../events/event-record.js';

/**
 * Where a sink connector put each record's Kafka coordinates: the fields Kafka Connect's InsertField
 * SMT is configured to write (`topic.field`, `partition.field`, `offset.field`). A file record that
 * carries them is applied under the stream's own identity, topic:partition:offset, so a backfill and
 * the stream drop each other's events exactly (docs/backfill.md "Files from a sink connector").
 */
export interface KafkaCoordinateFields {
  topic: string;
  partition: string;
  offset: string;
}

export const DEFAULT_KAFKA_COORDINATE_FIELDS: Readonly<KafkaCoordinateFields> = { topic: 'kafka_topic', partition: 'kafka_partition', offset: 'kafka_offset' };

export interface KafkaCoordinatesOptions {
  fields: KafkaCoordinateFields;
  /** The stream's topics: a record's topic must be one of them, and gives its type. */
  topics: { play: string; search: string };
}

export interface KafkaCoordinate {
  topic: string;
  partition: number;
  offset: number;
}

export const CoordinateReasons = { MISSING: 'MISSING_KAFKA_COORDINATES', INVALID: 'INVALID_KAFKA_COORDINATES' } as const;

export type CoordinateResult =
  | { ok: true; coordinate: KafkaCoordinate; type: EventType }
  | { ok: false; reason: (typeof CoordinateReasons)[keyof typeof CoordinateReasons]; detail: string };

const INT32_MAX = 0x7fff_ffff;
const DECIMAL = /^\d{1,16}$/;

/** Reads and checks one record's coordinates; the record's `type` may be left out (a sink file holds one topic's values), or must agree with the topic. */
export class KafkaCoordinateReader {
  readonly fields: KafkaCoordinateFields;
  readonly #typeOfTopic: ReadonlyMap<string, EventType>;
  readonly #topics: KafkaCoordinatesOptions['topics'];

  constructor(options: KafkaCoordinatesOptions) {
    const { fields, topics } = options;
    const names = [fields.topic, fields.partition, fields.offset];
    if (new Set(names).size !== 3 || names.some((name) => name === '' || name === 'type')) {
      throw new TasteError(ErrorCodes.CONFIG_INVALID, `the Kafka coordinate fields must be three different names other than "type" (got ${names.join(', ')})`);
    }
    if (topics.play === topics.search) throw new TasteError(ErrorCodes.CONFIG_INVALID, `the plays and searches topics must differ (both are ${topics.play})`);
    this.fields = fields;
    this.#topics = topics;
    this.#typeOfTopic = new Map([
      [topics.play, EventTypes.PLAY],
      [topics.search, EventTypes.SEARCH],
    ]);
  }

  /** `field` gives a field's value (undefined or null when absent); `type` is the record's own `type`, if any. */
  read(field: (name: string) => unknown, type: unknown): CoordinateResult {
    const { fields } = this;
    const topic = field(fields.topic);
    const partition = field(fields.partition);
    const offset = field(fields.offset);
    const missing = [topic, partition, offset].findIndex((value) => value === undefined || value === null);
    if (missing >= 0) {
      const name = [fields.topic, fields.partition, fields.offset][missing]!;
      return { ok: false, reason: CoordinateReasons.MISSING, detail: `no "${name}" field (the record's Kafka ${['topic', 'partition', 'offset'][missing]})` };
    }
    const topicType = typeof topic === 'string' ? this.#typeOfTopic.get(topic) : undefined;
    if (topicType === undefined) {
      return {
        ok: false,
        reason: CoordinateReasons.INVALID,
        detail: `"${fields.topic}" is ${JSON.stringify(topic)}, not the plays topic "${this.#topics.play}" or the searches topic "${this.#topics.search}" (--plays-topic, --searches-topic)`,
      };
    }
    const partitionNumber = wholeNumber(partition, INT32_MAX);
    if (partitionNumber === undefined) return { ok: false, reason: CoordinateReasons.INVALID, detail: `"${fields.partition}" must be a whole number 0..${INT32_MAX} (got ${describe(partition)})` };
    const offsetNumber = wholeNumber(offset, Number.MAX_SAFE_INTEGER);
    if (offsetNumber === undefined) return { ok: false, reason: CoordinateReasons.INVALID, detail: `"${fields.offset}" must be a whole number 0..2^53-1 (got ${describe(offset)})` };
    if (type !== undefined && type !== null && type !== topicType) {
      return { ok: false, reason: CoordinateReasons.INVALID, detail: `"type" is ${JSON.stringify(type)}, but topic "${topic}" holds ${topicType} events` };
    }
    return { ok: true, coordinate: { topic: topic as string, partition: partitionNumber, offset: offsetNumber }, type: topicType };
  }
}

/** A non-negative integer up to `max`, as a JSON number, a Parquet int64 (bigint) or a decimal string. */
function wholeNumber(value: unknown, max: number): number | undefined {
  const number = typeof value === 'number' ? value : typeof value === 'bigint' || (typeof value === 'string' && DECIMAL.test(value)) ? Number(value) : Number.NaN;
  return Number.isInteger(number) && number >= 0 && number <= max ? number : undefined;
}

function describe(value: unknown): string {
  return typeof value === 'bigint' ? `${value}` : JSON.stringify(value) ?? String(value);
}

/**
 * The rule that makes high-water-mark deduplication exact for file records: per topic-partition,
 * offsets strictly increase through the whole input, files in the order given. A mark is "every
 * offset up to here is applied": a record read after a higher offset of its partition was applied
 * (an earlier file, an earlier step) would be dropped as a duplicate it may not be. Checked over
 * every file before anything is written.
 */
export class OffsetOrder {
  readonly #last = new Map<string, { offset: number; where: string }>();
  #skippedOffsets = 0;
  #largestGap: OffsetGap | undefined;

  /** Throws when `coordinate` does not come after everything seen of its partition; `where` locates it (`file:line`). */
  see(coordinate: KafkaCoordinate, where: string): void {
    const key = `${coordinate.topic}[${coordinate.partition}]`;
    const last = this.#last.get(key);
    if (last !== undefined && coordinate.offset <= last.offset) {
      throw new TasteError(
        ErrorCodes.EVENT_INVALID,
        `${where}: ${key} offset ${coordinate.offset} comes after offset ${last.offset} (${last.where}). The records of one topic-partition must be ` +
          'given in offset order, each once: give the files of a partition in offset order (a sink names them by start offset) and leave out any that overlap ' +
          '(re-delivered records); see docs/backfill.md "Files from a sink connector". Nothing was written',
      );
    }
    if (last !== undefined && coordinate.offset > last.offset + 1) {
      const skipped = coordinate.offset - last.offset - 1;
      this.#skippedOffsets += skipped;
      if (!this.#largestGap || skipped > this.#largestGap.skipped) {
        this.#largestGap = { partition: key, after: last.offset, before: coordinate.offset, skipped, where };
      }
    }
    this.#last.set(key, { offset: coordinate.offset, where });
  }

  /** How many topic-partitions were seen: for the log. */
  get partitions(): number {
    return this.#last.size;
  }

  /**
   * Offsets absent between a partition's records, summed over the partitions, and the largest such
   * gap. Compaction and transaction markers leave gaps; so does a file left out. The run cannot tell
   * them apart, and the high-water mark passes over all of them, so the log shows them.
   */
  get gaps(): { skippedOffsets: number; largest?: OffsetGap } {
    return { skippedOffsets: this.#skippedOffsets, ...(this.#largestGap ? { largest: this.#largestGap } : {}) };
  }
}

/** A run of offsets absent from a partition's records: between `after` and `before`, where `before` was read. */
export interface OffsetGap {
  partition: string;
  after: number;
  before: number;
  skipped: number;
  where: string;
}
