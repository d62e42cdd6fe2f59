import { EndReason } from '../proto/generated/taste/v1/EndReason.js';
import { ItemKind } from '../proto/generated/taste/v1/ItemKind.js';
import { PlayContext } from '../proto/generated/taste/v1/PlayContext.js';
import type { PlayEvent__Output } from '../proto/generated/taste/v1/PlayEvent.js';
import type { SearchEvent__Output } from '../proto/generated/taste/v1/SearchEvent.js';
import { isValidUserId } from './user-id.js';

/**
 * Why an event was refused. The stream dead-letters it with this reason in the headers
 * (consumers/dead-letter.ts), the backfill reports it.
 */
export const RejectReasons = {
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  UNDECODABLE: 'UNDECODABLE',
  MISSING_USER_ID: 'MISSING_USER_ID',
  INVALID_USER_ID: 'INVALID_USER_ID',
  KEY_MISMATCH: 'KEY_MISMATCH',
  MISSING_ITEM_URI: 'MISSING_ITEM_URI',
  FIELD_TOO_LONG: 'FIELD_TOO_LONG',
  UNKNOWN_ENUM: 'UNKNOWN_ENUM',
  EVENT_TIME_OUT_OF_RANGE: 'EVENT_TIME_OUT_OF_RANGE',
  EMPTY_SEARCH: 'EMPTY_SEARCH',
  // Erasure requests (events/erasure-request.ts) only.
  MISSING_REQUEST_ID: 'MISSING_REQUEST_ID',
  INVALID_REQUEST_ID: 'INVALID_REQUEST_ID',
  REQUEST_TIME_OUT_OF_RANGE: 'REQUEST_TIME_OUT_OF_RANGE',
} as const;
export type RejectReason = (typeof RejectReasons)[keyof typeof RejectReasons];

export interface Rejection {
  reason: RejectReason;
  detail: string;
}

export interface ValidationLimits {
  /** Oldest accepted event time (ms since epoch). @default 2005-01-01 */
  minEventTimeMs: number;
  /** How far in the future an event time may be, for clock skew. @default 1 day */
  maxFutureSkewMs: number;
  /** @default 512 */
  maxUriLength: number;
  /** @default 1024 */
  maxQueryLength: number;
}

export const defaultValidationLimits: ValidationLimits = {
  minEventTimeMs: Date.UTC(2005, 0, 1),
  maxFutureSkewMs: 24 * 3600 * 1000,
  maxUriLength: 512,
  maxQueryLength: 1024,
};

// The enum names this version knows, from the .proto; decoding leaves an unknown value as its number.
const ITEM_KINDS = new Set<string>(Object.values(ItemKind));
const END_REASONS = new Set<string>(Object.values(EndReason));
const PLAY_CONTEXTS = new Set<string>(Object.values(PlayContext));

function reject(reason: RejectReason, detail: string): Rejection {
  return { reason, detail };
}

function checkCommon(
  userId: string,
  key: string | null,
  eventTimeMs: number,
  nowMs: number,
  limits: ValidationLimits,
): Rejection | undefined {
  if (userId === '') return reject(RejectReasons.MISSING_USER_ID, 'user_id is empty');
  if (!isValidUserId(userId)) {
    return reject(RejectReasons.INVALID_USER_ID, 'user_id must be 1-128 characters of [A-Za-z0-9._:@+=-]');
  }
  if (key !== userId) {
    return reject(RejectReasons.KEY_MISMATCH, `message key ${JSON.stringify(key)} is not the user_id (events must be keyed by user)`);
  }
  if (!Number.isSafeInteger(eventTimeMs) || eventTimeMs < limits.minEventTimeMs || eventTimeMs > nowMs + limits.maxFutureSkewMs) {
    return reject(RejectReasons.EVENT_TIME_OUT_OF_RANGE, `event_time_ms ${eventTimeMs} is not a plausible time`);
  }
  return undefined;
}

export function validatePlayEvent(
  event: PlayEvent__Output,
  key: string | null,
  nowMs: number,
  limits: ValidationLimits = defaultValidationLimits,
): Rejection | undefined {
  const common = checkCommon(event.userId, key, event.eventTimeMs, nowMs, limits);
  if (common) return common;
  if (event.itemUri === '') return reject(RejectReasons.MISSING_ITEM_URI, 'item_uri is empty');
  if (event.itemUri.length > limits.maxUriLength) {
    return reject(RejectReasons.FIELD_TOO_LONG, `item_uri is longer than ${limits.maxUriLength} characters`);
  }
  if (!ITEM_KINDS.has(event.itemKind) || !END_REASONS.has(event.endReason) || !PLAY_CONTEXTS.has(event.context)) {
    return reject(RejectReasons.UNKNOWN_ENUM, 'item_kind, end_reason or context has a value this version does not know');
  }
  return undefined;
}

export function validateSearchEvent(
  event: SearchEvent__Output,
  key: string | null,
  nowMs: number,
  limits: ValidationLimits = defaultValidationLimits,
): Rejection | undefined {
  const common = checkCommon(event.userId, key, event.eventTimeMs, nowMs, limits);
  if (common) return common;
  if (event.query.length > limits.maxQueryLength) {
    return reject(RejectReasons.FIELD_TOO_LONG, `query is longer than ${limits.maxQueryLength} characters`);
  }
  if (event.clickedItemUri.length > limits.maxUriLength) {
    return reject(RejectReasons.FIELD_TOO_LONG, `clicked_item_uri is longer than ${limits.maxUriLength} characters`);
  }
  if (event.query.trim() === '' && event.clickedItemUri === '') {
    return reject(RejectReasons.EMPTY_SEARCH, 'search has neither query text nor a clicked result');
  }
  if (!ITEM_KINDS.has(event.clickedItemKind)) {
    return reject(RejectReasons.UNKNOWN_ENUM, 'clicked_item_kind has a value this version does not know');
  }
  return undefined;
}
