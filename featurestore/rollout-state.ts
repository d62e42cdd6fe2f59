import { ErrorCodes, TasteError } from '../common/errors.js';
import type { RedisClient } from './feature-store.js';

/**
 * The rollout record: which model version `taste serve` answers when a request leaves
 * `model_version` empty, set at runtime by `taste rollout set-default` (docs/rollout.md).
 *
 *   <prefix>:rollout:default   →  hash
 *     version   the default model version
 *     previous  the default before it ("" if none): what a rollback names
 *     by        who set it (free text: user@host)
 *     at        when (ms since epoch)
 *     coverage  the coverage measured before the switch ("" when not measured)
 *     forced    "1" when the coverage guard was overridden
 *   <prefix>:rollout:replicas  →  hash, one field per serving replica id → JSON ReplicaRegistration
 *
 * No hash tag: neither key can be mistaken for a user's (`<prefix>:{<user>}:…`), so the scans of
 * user keys never meet them. Each is one key, so every step on it is atomic on a Cluster too.
 */
export interface RolloutRecord {
  version: string;
  /** undefined when this was the first default set. */
  previous: string | undefined;
  setBy: string;
  setAtMs: number;
  coverage: number | undefined;
  forced: boolean;
}

/** What a serving replica says about itself each time it polls the record. */
export interface ReplicaRegistration {
  /** The versions it serves (the ones a request may name). */
  versions: string[];
  /** The default it answers empty-version requests with now. */
  defaultVersion: string;
  /** When it last polled (ms since epoch): older than `staleAfterMs` means gone. */
  seenMs: number;
  /** Its poll interval, so readers can tell a live replica from one that stopped. */
  pollMs: number;
}

export interface ReplicaEntry extends ReplicaRegistration {
  id: string;
  live: boolean;
}

export function rolloutKey(prefix: string): string {
  return `${prefix}:rollout:default`;
}

export function replicasKey(prefix: string): string {
  return `${prefix}:rollout:replicas`;
}

/** Model versions as requests and keys carry them (the same rule as serving's). */
export const ROLLOUT_VERSION_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** A replica that has not polled for this many of its intervals (and at least MIN_STALE_MS) is not live. */
const STALE_POLLS = 3;
const MIN_STALE_MS = 10_000;

// Compare-and-set: the switch lands only if the default is still the one the caller checked its
// coverage against ("" = none set), so two operators switching at once cannot skip each other's check.
const SET_DEFAULT_SCRIPT = `
local current = redis.call('HGET', KEYS[1], 'version') or ''
if current ~= ARGV[1] then return {0, current} end
if current == ARGV[2] then return {2, current} end
local previous = current
if previous == '' then previous = ARGV[7] end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'previous', previous, 'by', ARGV[3], 'at', ARGV[4], 'coverage', ARGV[5], 'forced', ARGV[6])
return {1, current}
`;

export const SetDefaultOutcomes = {
  /** The default is now the version asked for. */
  SET: 'set',
  /** It was that version already: nothing changed. */
  UNCHANGED: 'unchanged',
  /** The default was no longer `expectedCurrent`: nothing changed; re-check and try again. */
  CONFLICT: 'conflict',
} as const;
export type SetDefaultOutcome = (typeof SetDefaultOutcomes)[keyof typeof SetDefaultOutcomes];

export interface SetDefaultRequest {
  version: string;
  /** The default the caller's checks were made against; undefined: none is set yet. */
  expectedCurrent: string | undefined;
  /**
   * What was served before when no record says so (the replicas' --model version), kept as
   * `previous` so the first switch can be rolled back by name too.
   */
  servedBefore?: string;
  setBy: string;
  nowMs: number;
  coverage?: number;
  forced?: boolean;
}

/** The record, or undefined when no default was ever set (serving then uses its --model's version). */
export async function readRolloutRecord(redis: RedisClient, prefix: string): Promise<RolloutRecord | undefined> {
  const fields = await guard('reading the rollout record', () => redis.hgetall(rolloutKey(prefix)));
  return parseRolloutRecord(fields);
}

/** A stored record; one without a valid version reads as none (a foreign writer must not break serving). */
export function parseRolloutRecord(fields: Record<string, string>): RolloutRecord | undefined {
  const version = fields.version ?? '';
  if (!ROLLOUT_VERSION_PATTERN.test(version)) return undefined;
  const previous = fields.previous ?? '';
  const coverage = fields.coverage === undefined || fields.coverage === '' ? undefined : Number(fields.coverage);
  return {
    version,
    previous: ROLLOUT_VERSION_PATTERN.test(previous) ? previous : undefined,
    setBy: fields.by ?? '',
    setAtMs: Number(fields.at ?? 0) || 0,
    coverage: coverage !== undefined && Number.isFinite(coverage) ? coverage : undefined,
    forced: fields.forced === '1',
  };
}

/** Sets the default if it is still `expectedCurrent` (compare-and-set, one atomic step). */
export async function setDefaultVersion(redis: RedisClient, prefix: string, request: SetDefaultRequest): Promise<{ outcome: SetDefaultOutcome; current: string | undefined }> {
  if (!ROLLOUT_VERSION_PATTERN.test(request.version)) {
    throw new TasteError(ErrorCodes.CONFIG_INVALID, `model version ${JSON.stringify(request.version)} is not valid: use 1-64 of A-Z a-z 0-9 . _ -`);
  }
  const [status, current] = (await guard('setting the default version', () =>
    redis.eval(
      SET_DEFAULT_SCRIPT,
      1,
      rolloutKey(prefix),
      request.expectedCurrent ?? '',
      request.version,
      request.setBy,
      String(request.nowMs),
      request.coverage === undefined ? '' : String(request.coverage),
      request.forced ? '1' : '0',
      request.servedBefore ?? '',
    ),
  )) as [number, string];
  const outcome = status === 1 ? SetDefaultOutcomes.SET : status === 2 ? SetDefaultOutcomes.UNCHANGED : SetDefaultOutcomes.CONFLICT;
  return { outcome, current: current === '' ? undefined : current };
}

/** Records what a replica serves, with the time it last polled. */
export async function registerReplica(redis: RedisClient, prefix: string, id: string, registration: ReplicaRegistration): Promise<void> {
  await guard('registering the replica', () => redis.hset(replicasKey(prefix), id, JSON.stringify(registration)));
}

/** A replica that stops cleanly takes its entry out, so it does not count as a replica that missed a switch. */
export async function unregisterReplica(redis: RedisClient, prefix: string, id: string): Promise<void> {
  await guard('unregistering the replica', () => redis.hdel(replicasKey(prefix), id));
}

/** Every registered replica, each marked live or not as of `nowMs`; unreadable entries are skipped. */
export async function readReplicas(redis: RedisClient, prefix: string, nowMs: number): Promise<ReplicaEntry[]> {
  const fields = await guard('reading the replicas', () => redis.hgetall(replicasKey(prefix)));
  const entries: ReplicaEntry[] = [];
  for (const [id, json] of Object.entries(fields)) {
    const registration = parseRegistration(json);
    if (registration) entries.push({ id, ...registration, live: isLive(registration, nowMs) });
  }
  return entries.sort((a, b) => a.id.localeCompare(b.id));
}

/** Drops the entries of replicas not seen for `olderThanMs` (killed without a clean stop). */
export async function pruneReplicas(redis: RedisClient, prefix: string, nowMs: number, olderThanMs: number): Promise<number> {
  const gone = (await readReplicas(redis, prefix, nowMs)).filter((entry) => nowMs - entry.seenMs > olderThanMs).map((entry) => entry.id);
  if (gone.length === 0) return 0;
  return guard('pruning the replicas', () => redis.hdel(replicasKey(prefix), ...gone));
}

export function isLive(registration: Pick<ReplicaRegistration, 'seenMs' | 'pollMs'>, nowMs: number): boolean {
  return nowMs - registration.seenMs <= Math.max(STALE_POLLS * registration.pollMs, MIN_STALE_MS);
}

function parseRegistration(json: string): ReplicaRegistration | undefined {
  try {
    const value = JSON.parse(json) as Partial<ReplicaRegistration>;
    if (!Array.isArray(value.versions) || typeof value.defaultVersion !== 'string' || typeof value.seenMs !== 'number' || typeof value.pollMs !== 'number') return undefined;
    return { versions: value.versions.filter((v): v is string => typeof v === 'string'), defaultVersion: value.defaultVersion, seenMs: value.seenMs, pollMs: value.pollMs };
  } catch {
    return undefined;
  }
}

async function guard<T>(what: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (cause) {
    if (cause instanceof TasteError) throw cause;
    throw new TasteError(ErrorCodes.STORE_UNAVAILABLE, `Redis: ${what} failed: ${(cause as Error).message}`, { cause, canRetry: true });
  }
}
