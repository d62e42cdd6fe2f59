// The schema of a file record (a JSONL line, a Parquet row): `type` ("play" or "search") plus the
// fields of that protobuf message in their generated camelCase names, read from the .proto itself
// so that files cannot drift from the Kafka contract. A field added to events.proto is accepted
// (and written) without a change here.
//
// protobufjs' `fromObject` converts, but leniently: it turns 5 into "5" and "12a" into 12, wraps
// 2^32 to 0, maps an unknown enum name to the zero value and ignores unknown fields. A file is
// hand-made or exported by another system, so each of those is a mistake worth reporting: every
// value is checked against its field's declared type first, and only then converted.
import protobuf from 'protobufjs';
import { ErrorCodes, TasteError } from '../common/errors.js';
import { playType, searchType, toObjectOptions } from '../proto/event-codec.js';
import { type EventRecord, type EventType, EventTypes } from './event-record.js';

/** The record's tag: not a protobuf field. */
const TYPE_FIELD = 'type';

/**
 * What proto3 cannot say (it has no required fields): the fields an event is meaningless without.
 * A required string must also be non-empty.
 */
const REQUIRED_FIELDS: Readonly<Record<EventType, readonly string[]>> = {
  [EventTypes.PLAY]: ['userId', 'eventTimeMs', 'itemUri'],
  [EventTypes.SEARCH]: ['userId', 'eventTimeMs'],
};

/** int64 fields that hold ms since the epoch: a negative one is a mistake, not a time before 1970. */
const EPOCH_MS_FIELDS: ReadonlySet<string> = new Set(['eventTimeMs']);

const INT32_MIN = -0x8000_0000;
const INT32_MAX = 0x7fff_ffff;
const UINT32_MAX = 0xffff_ffff;
const UNSIGNED_64 = new Set(['uint64', 'fixed64']);
const SIGNED_64 = new Set(['int64', 'sint64', 'sfixed64']);
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The message types a schema is read from. */
export interface EventRecordTypes {
  play: protobuf.Type;
  search: protobuf.Type;
}

export interface EventRecordSchema {
  /** The fields a record of this type may have besides `type`, in .proto order. */
  fields(type: EventType): readonly string[];
  /**
   * A parsed JSON value (a JSONL line) or a row object (Parquet) → the event. Like proto3 JSON,
   * missing fields take their defaults (except REQUIRED_FIELDS) and 64-bit integers may be decimal
   * strings; enums are given by name; unknown fields are refused, to catch typos. Throws a
   * TasteError (EVENT_INVALID) whose message names the field and says what it must be.
   */
  parse(value: unknown): EventRecord;
  /** The event as one JSON line (no newline), fields in .proto order, so output is byte-stable. */
  toJson(record: EventRecord): string;
}

interface MessageSchema {
  type: protobuf.Type;
  fields: readonly string[];
  /** How each field is checked: the required ones first, then the others in .proto order. */
  rules: readonly FieldRule[];
  /** An empty message in the `__Output` shape: every field at its proto3 default, in .proto order. */
  defaults: Readonly<Record<string, unknown>>;
  /** Every field is a singular scalar or enum outside any oneof: the checked values are the output (see `parse`). */
  plain: boolean;
  /** `,"name":` for each field, in .proto order. */
  prefixes: readonly (readonly [name: string, prefix: string])[];
}

interface FieldRule {
  field: protobuf.Field;
  name: string;
  required: boolean;
  /** For a singular scalar or enum field: whether a present value is valid (checkField says why not). */
  accepts: ((value: unknown) => boolean) | undefined;
}

/** Builds the schema of file records from two message types (tests pass extended ones). */
export function eventRecordSchema(types: EventRecordTypes): EventRecordSchema {
  const messages: Record<EventType, MessageSchema> = {
    [EventTypes.PLAY]: messageSchema(types.play, REQUIRED_FIELDS[EventTypes.PLAY]),
    [EventTypes.SEARCH]: messageSchema(types.search, REQUIRED_FIELDS[EventTypes.SEARCH]),
  };
  return {
    fields: (type) => messages[type].fields,
    parse(value) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw invalid(`expected a JSON object, got ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`);
      }
      const record = value as Record<string, unknown>;
      const type = record[TYPE_FIELD];
      if (type !== EventTypes.PLAY && type !== EventTypes.SEARCH) {
        throw invalid(`"type" must be "play" or "search" (got ${describe(type)})`);
      }
      const message = messages[type];
      for (const key of Object.keys(record)) {
        if (key !== TYPE_FIELD && !Object.hasOwn(message.type.fields, key)) {
          throw invalid(`unknown field "${key}" in a ${type} event (expected: ${[TYPE_FIELD, ...message.fields].join(', ')})`);
        }
      }
      for (const rule of message.rules) {
        const field = record[rule.name];
        if (field === undefined || rule.accepts === undefined || !rule.accepts(field)) checkField(rule.field, field, rule.name, rule.required);
      }
      if (!message.plain) {
        // fromObject ignores the `type` tag, as it would any key that is not a field.
        return { kind: type, event: message.type.toObject(message.type.fromObject(record), toObjectOptions) } as EventRecord;
      }
      // Checked singular scalars and enum names already are what toObject(fromObject(record)) would
      // give, but for 64-bit integers as strings. The round trip costs about as much as JSON.parse
      // (1.9 µs a simulated line here), and the file backfill parses every line, so the object is
      // built here instead; test/events/record-schema.test.ts checks that the two agree.
      const event: Record<string, unknown> = { ...message.defaults };
      for (const rule of message.rules) {
        const field = record[rule.name];
        if (field !== undefined) event[rule.name] = typeof field === 'string' && rule.field.long ? Number(field) : field;
      }
      return { kind: type, event } as unknown as EventRecord;
    },
    toJson(record) {
      const event = record.event as unknown as Record<string, unknown>;
      let json = `{"type":"${record.kind}"`;
      for (const [name, prefix] of messages[record.kind].prefixes) {
        const value = event[name];
        // An unset oneof member or message field (toObject leaves it undefined or null) is left out.
        if (value !== undefined && value !== null) json += prefix + JSON.stringify(value);
      }
      return json + '}';
    },
  };
}

/** The schema of taste.v1's events.proto: what the backfill reads and the simulator writes. */
export const eventRecords: EventRecordSchema = eventRecordSchema({ play: playType, search: searchType });

function messageSchema(type: protobuf.Type, required: readonly string[]): MessageSchema {
  type.resolveAll();
  for (const field of type.fieldsArray) {
    if (field.name === TYPE_FIELD) throw new TasteError(ErrorCodes.CONFIG_INVALID, `${type.fullName} has a field "type", which file records use as their tag`);
    checkSupported(field, type.fullName);
  }
  for (const name of required) {
    if (!Object.hasOwn(type.fields, name)) throw new TasteError(ErrorCodes.CONFIG_INVALID, `${type.fullName} has no field "${name}", which file records require`);
  }
  const fields = type.fieldsArray.map((field) => field.name);
  const rules = [...required, ...fields.filter((name) => !required.includes(name))].map((name) => {
    const field = type.fields[name]!;
    return { field, name, required: required.includes(name), accepts: acceptor(field, name, required.includes(name)) };
  });
  return {
    type,
    fields,
    rules,
    defaults: type.toObject(type.create(), toObjectOptions),
    plain: type.fieldsArray.every(
      (field) => !field.repeated && !field.bytes && field.partOf === null && !(field.resolvedType instanceof protobuf.Type) && !aliased(field),
    ),
    prefixes: fields.map((name) => [name, `,${JSON.stringify(name)}:`] as const),
  };
}

/** An enum with two names for one number: toObject gives the first name, whichever a record has. */
function aliased(field: protobuf.Field): boolean {
  const values = field.resolvedType instanceof protobuf.Enum ? Object.values(field.resolvedType.values) : [];
  return new Set(values).size !== values.length;
}

/** Map fields would need their own key checks; refused at load so one is never half-checked. */
function checkSupported(field: protobuf.Field, where: string): void {
  if (field.map) throw new TasteError(ErrorCodes.CONFIG_INVALID, `${where}.${field.name} is a map field, which file records do not support yet (events/record-schema.ts)`);
  if (field.resolvedType instanceof protobuf.Type) {
    for (const inner of field.resolvedType.fieldsArray) checkSupported(inner, field.resolvedType.fullName);
  }
}

function checkField(field: protobuf.Field, value: unknown, path: string, required: boolean): void {
  if (value === undefined) {
    if (required) throw invalid(`"${path}" must be ${expectation(field, path, required)} (got nothing)`);
    return;
  }
  if (field.repeated) {
    if (!Array.isArray(value)) throw invalid(`"${path}" must be an array, each element ${expectation(field, path, false)} (got ${describe(value)})`);
    value.forEach((element, index) => checkValue(field, element, `${path}[${index}]`, false));
    return;
  }
  checkValue(field, value, path, required);
}

function checkValue(field: protobuf.Field, value: unknown, path: string, required: boolean): void {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Enum) {
    if (typeof value === 'string' && Object.hasOwn(resolved.values, value)) return;
  } else if (resolved instanceof protobuf.Type) {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      checkMessage(resolved, value as Record<string, unknown>, path);
      return;
    }
  } else if (scalarAcceptor(field.type, required, EPOCH_MS_FIELDS.has(path))(value)) {
    return;
  }
  throw invalid(`"${path}" must be ${expectation(field, path, required)} (got ${describe(value)})`);
}

function checkMessage(type: protobuf.Type, value: Record<string, unknown>, path: string): void {
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(type.fields, key)) {
      throw invalid(`unknown field "${path}.${key}" (expected: ${type.fieldsArray.map((field) => field.name).join(', ')})`);
    }
  }
  for (const field of type.fieldsArray) checkField(field, value[field.name], `${path}.${field.name}`, false);
}

function acceptor(field: protobuf.Field, path: string, required: boolean): ((value: unknown) => boolean) | undefined {
  const resolved = field.resolvedType;
  if (field.repeated || resolved instanceof protobuf.Type) return undefined;
  if (resolved instanceof protobuf.Enum) {
    const names = new Set(Object.keys(resolved.values));
    return (value) => typeof value === 'string' && names.has(value);
  }
  return scalarAcceptor(field.type, required, EPOCH_MS_FIELDS.has(path));
}

/** The check of one scalar type, made once per field: parsing runs it for every line. */
function scalarAcceptor(type: string, required: boolean, epochMs: boolean): (value: unknown) => boolean {
  switch (type) {
    case 'string':
      return required ? (value) => typeof value === 'string' && value !== '' : (value) => typeof value === 'string';
    case 'bool':
      return (value) => typeof value === 'boolean';
    case 'double':
    case 'float':
      return (value) => typeof value === 'number';
    case 'bytes':
      return (value) => typeof value === 'string' && BASE64.test(value);
    case 'uint32':
    case 'fixed32':
      return (value) => Number.isInteger(value) && (value as number) >= 0 && (value as number) <= UINT32_MAX;
    case 'int32':
    case 'sint32':
    case 'sfixed32':
      return (value) => Number.isInteger(value) && (value as number) >= INT32_MIN && (value as number) <= INT32_MAX;
    default: {
      // 64-bit: a safe integer, or a decimal string of one (proto3 JSON writes int64 as strings).
      const nonNegative = UNSIGNED_64.has(type) || epochMs;
      return (value) => {
        const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
        return Number.isSafeInteger(n) && (!nonNegative || (n as number) >= 0);
      };
    }
  }
}

/** What a field must be, as error messages say it. */
function expectation(field: protobuf.Field, path: string, required: boolean): string {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Enum) return `one of ${Object.keys(resolved.values).join(', ')}`;
  if (resolved instanceof protobuf.Type) return `an object (a ${resolved.name})`;
  switch (field.type) {
    case 'string':
      return required ? 'a non-empty string' : 'a string';
    case 'bool':
      return 'true or false';
    case 'double':
    case 'float':
      return 'a number';
    case 'bytes':
      return 'a base64 string';
    case 'uint32':
    case 'fixed32':
      return `an integer between 0 and ${UINT32_MAX}`;
    case 'int32':
    case 'sint32':
    case 'sfixed32':
      return `an integer between ${INT32_MIN} and ${INT32_MAX}`;
    default:
      if (EPOCH_MS_FIELDS.has(path)) return 'a non-negative integer of ms since the epoch';
      if (UNSIGNED_64.has(field.type)) return `an integer between 0 and ${Number.MAX_SAFE_INTEGER}`;
      if (SIGNED_64.has(field.type)) return `an integer between ${Number.MIN_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER}`;
      return `a ${field.type}`;
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'bigint') return `${value}n`;
  return JSON.stringify(value) ?? String(value);
}

function invalid(message: string): TasteError {
  return new TasteError(ErrorCodes.EVENT_INVALID, message);
}
