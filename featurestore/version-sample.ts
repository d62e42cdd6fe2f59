import { Cluster } from 'ioredis';
import { ErrorCodes, TasteError } from '../common/errors.js';
import { isValidUserId } from '../events/user-id.js';
import type { RedisClient } from './feature-store.js';
import { StateFields, userKey } from './keys.js';
import { ROLLOUT_VERSION_PATTERN } from './rollout-state.js';

/**
 * A sample of recently active users, and what each model version holds for them: the ground for
 * the coverage guard of `taste rollout set-default` and the freshness of `taste rollout status`.
 *
 * The users come from the keys of one version (the base: the current default), found by SCAN on
 * every master; a user counts as active when the newest event in that key (`last`) is within
 * `activeWithinMs`. So "coverage of v" is the share of the users the default serves today, active
 * lately, that v also has an embedding for: users only v knows are not counted, and users whose
 * base key is gone (erased) are not either.
 */
export interface VersionSampleOptions {
  /** Whose keys are scanned for users. */
  baseVersion: string;
  /** The versions to measure for the sampled users (the base is measured too, always). */
  versions: readonly string[];
  activeWithinMs: number;
  nowMs: number;
  /** Stop after this many base keys (split evenly across the masters). @default 20000 */
  maxKeys?: number;
  /** SCAN's COUNT hint per call. @default 1000 */
  scanCount?: number;
}

export const defaultVersionSampleOptions = { maxKeys: 20_000, scanCount: 1000 } as const;

export interface VersionStats {
  /** Active users that have an embedding in this version. */
  covered: number;
  /** now - upd of each covered user, ascending. */
  agesMs: number[];
  /** upd - last (event time of the newest event → written) of each covered user, ascending. */
  lagsMs: number[];
}

export interface VersionSample {
  baseVersion: string;
  /** Base keys read. */
  scannedKeys: number;
  /** Of them, users active within the window: the denominator of coverage. */
  active: number;
  /** Every base key was read (a census: no sampling error). */
  complete: boolean;
  versions: Map<string, VersionStats>;
}

export interface VersionSummary {
  version: string;
  covered: number;
  active: number;
  /** covered / active; undefined with no active user. */
  coverage: number | undefined;
  /** Binomial standard error of coverage (0 for a census). */
  standardError: number | undefined;
  ageP50Ms: number | undefined;
  ageP95Ms: number | undefined;
  lagP50Ms: number | undefined;
}

/** Scans the base version's keys on every master and measures each version for the active users found. */
export async function sampleVersions(redis: RedisClient, prefix: string, options: VersionSampleOptions): Promise<VersionSample> {
  const maxKeys = options.maxKeys ?? defaultVersionSampleOptions.maxKeys;
  const scanCount = options.scanCount ?? defaultVersionSampleOptions.scanCount;
  const versions = [...new Set([options.baseVersion, ...options.versions])];
  for (const version of versions) {
    if (!ROLLOUT_VERSION_PATTERN.test(version)) throw new TasteError(ErrorCodes.CONFIG_INVALID, `model version ${JSON.stringify(version)} is not valid: use 1-64 of A-Z a-z 0-9 . _ -`);
  }
  if (!Number.isInteger(maxKeys) || maxKeys < 1) throw new TasteError(ErrorCodes.CONFIG_INVALID, `maxKeys must be a positive integer, got ${maxKeys}`);
  const stats = new Map<string, VersionStats>(versions.map((version) => [version, { covered: 0, agesMs: [], lagsMs: [] }]));
  const sample: VersionSample = { baseVersion: options.baseVersion, scannedKeys: 0, active: 0, complete: true, versions: stats };
  try {
    // SCAN walks one node only: every master, each for its share, so the sample spans all slots.
    const nodes = redis instanceof Cluster ? redis.nodes('master') : [redis];
    const quota = Math.ceil(maxKeys / nodes.length);
    const pattern = `${globEscape(prefix)}:{*}:${options.baseVersion}`;
    for (const node of nodes) {
      let cursor = '0';
      let taken = 0;
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', scanCount);
        cursor = next;
        const users = keys.map((key) => userOf(key, prefix, options.baseVersion)).filter((user): user is string => user !== undefined);
        const batch = users.slice(0, quota - taken);
        taken += batch.length;
        if (batch.length < users.length) sample.complete = false;
        await measure(redis, prefix, batch, versions, options, sample);
      } while (cursor !== '0' && taken < quota);
      if (cursor !== '0') sample.complete = false;
    }
  } catch (cause) {
    if (cause instanceof TasteError) throw cause;
    throw new TasteError(ErrorCodes.STORE_UNAVAILABLE, `Redis: sampling users failed: ${(cause as Error).message}`, { cause, canRetry: true });
  }
  for (const entry of stats.values()) {
    entry.agesMs.sort((a, b) => a - b);
    entry.lagsMs.sort((a, b) => a - b);
  }
  return sample;
}

/** One SCAN batch: the base fields of each user, then every version's for the active ones. */
async function measure(redis: RedisClient, prefix: string, users: string[], versions: string[], options: VersionSampleOptions, sample: VersionSample): Promise<void> {
  if (users.length === 0) return;
  sample.scannedKeys += users.length;
  // Promise.all: ioredis pipelines these per node (auto-pipelining), as the feature store's reads.
  const base = await Promise.all(users.map((user) => redis.hmget(userKey(prefix, user, options.baseVersion), StateFields.lastEventMs)));
  const active = users.filter((_, index) => {
    const last = Number(base[index]?.[0] ?? Number.NaN);
    return Number.isFinite(last) && options.nowMs - last <= options.activeWithinMs;
  });
  sample.active += active.length;
  const reads = await Promise.all(
    active.flatMap((user) =>
      versions.map(async (version) => {
        const key = userKey(prefix, user, version);
        const [fields, embeddingBytes] = await Promise.all([redis.hmget(key, StateFields.updatedMs, StateFields.lastEventMs), redis.hstrlen(key, StateFields.embedding)]);
        return { version, updated: Number(fields[0] ?? Number.NaN), last: Number(fields[1] ?? Number.NaN), embeddingBytes };
      }),
    ),
  );
  for (const { version, updated, last, embeddingBytes } of reads) {
    if (embeddingBytes === 0) continue;
    const entry = sample.versions.get(version)!;
    entry.covered++;
    if (Number.isFinite(updated)) entry.agesMs.push(options.nowMs - updated);
    if (Number.isFinite(updated) && Number.isFinite(last)) entry.lagsMs.push(updated - last);
  }
}

/** Coverage, its error and the freshness quantiles of one version in a sample. */
export function summarizeVersion(sample: VersionSample, version: string): VersionSummary {
  const stats = sample.versions.get(version) ?? { covered: 0, agesMs: [], lagsMs: [] };
  const estimate = coverageEstimate(stats.covered, sample.active, sample.complete);
  return {
    version,
    covered: stats.covered,
    active: sample.active,
    coverage: estimate?.share,
    standardError: estimate?.standardError,
    ageP50Ms: quantile(stats.agesMs, 0.5),
    ageP95Ms: quantile(stats.agesMs, 0.95),
    lagP50Ms: quantile(stats.lagsMs, 0.5),
  };
}

/**
 * The covered share and its binomial standard error sqrt(p(1-p)/n); 0 for a census (every key read).
 * undefined with no active user: there is nothing to measure.
 */
export function coverageEstimate(covered: number, active: number, census: boolean): { share: number; standardError: number } | undefined {
  if (active === 0) return undefined;
  const share = covered / active;
  return { share, standardError: census ? 0 : Math.sqrt((share * (1 - share)) / active) };
}

/** The nearest-rank quantile of ascending values; undefined when there are none. */
export function quantile(sorted: readonly number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1];
}

/** The user of a key `<prefix>:{<user>}:<version>`, or undefined for a key that only looks like one. */
function userOf(key: string, prefix: string, version: string): string | undefined {
  const head = `${prefix}:{`;
  const tail = `}:${version}`;
  if (!key.startsWith(head) || !key.endsWith(tail)) return undefined;
  const user = key.slice(head.length, key.length - tail.length);
  return isValidUserId(user) ? user : undefined;
}

/** A literal for a SCAN MATCH pattern. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, (character) => `\\${character}`);
}
