import { hostname } from 'node:os';
import { describeError, ErrorCodes, TasteError } from '../common/errors.js';
import { silentLogger, type Logger } from '../common/logger.js';
import type { RedisClient } from '../featurestore/feature-store.js';
import { readRolloutRecord, registerReplica, unregisterReplica } from '../featurestore/rollout-state.js';
import type { EmbeddingService } from './embedding-service.js';

export interface DefaultVersionWatcherOptions {
  redis: RedisClient;
  /** First part of the rollout keys (featurestore/rollout-state.ts). */
  keyPrefix: string;
  service: Pick<EmbeddingService, 'defaultModelVersion' | 'modelVersions' | 'setDefaultVersion'>;
  /** The default while no rollout record exists: the version of `taste serve --model`. */
  configuredDefault: string;
  /**
   * How often the record is read. A switch reaches this replica within one interval plus one
   * Redis round (at most the command timeout). @default 1000
   */
  pollMs?: number;
  /** This replica's field in `<prefix>:rollout:replicas`. @default `<hostname>:<pid>` */
  replicaId?: string;
  /** @default silentLogger */
  logger?: Logger;
  observer?: DefaultVersionObserver;
  /** @default Date.now */
  now?: () => number;
}

/** What the watcher reports; metrics/rollout-metrics.ts turns it into Prometheus metrics. */
export interface DefaultVersionObserver {
  /** The default now served: once on the first read, then after every switch. */
  onDefault?(version: string): void;
  /** The record names a version this replica does not serve: the old default stays (once per such version). */
  onRefused?(version: string): void;
  /** A poll could not read or register (Redis down): the current default stays. */
  onPollFailed?(): void;
}

export const defaultDefaultVersionWatcherOptions = { pollMs: 1000 } as const;

/**
 * Keeps the service's default model version equal to the rollout record's (`taste rollout
 * set-default`), polling it, and registers what this replica serves beside it so the command can
 * refuse a version some replica lacks and count the replicas that switched. Polls never overlap;
 * a failed one keeps the current default and the next one retries: Redis down is never a crash.
 */
export class DefaultVersionWatcher {
  readonly #options: DefaultVersionWatcherOptions;
  readonly #pollMs: number;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly replicaId: string;
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<boolean> | undefined;
  #stopped = false;
  #failing = false;
  #read = false;
  #refused: string | undefined;
  #resolveFirstRead: (read: boolean) => void = () => {};
  /**
   * Resolves true once a poll has read the record (or found none), or found that this Redis user
   * may not read it (retrying cannot help); false if stopped before.
   */
  readonly firstRead = new Promise<boolean>((resolve) => (this.#resolveFirstRead = resolve));

  constructor(options: DefaultVersionWatcherOptions) {
    const pollMs = options.pollMs ?? defaultDefaultVersionWatcherOptions.pollMs;
    if (!Number.isInteger(pollMs) || pollMs < 1) throw new TasteError(ErrorCodes.CONFIG_INVALID, `DefaultVersionWatcher: pollMs must be a positive integer, got ${pollMs}`);
    this.#options = options;
    this.#pollMs = pollMs;
    this.#logger = (options.logger ?? silentLogger).child({ component: 'default-version-watcher' });
    this.#now = options.now ?? Date.now;
    this.replicaId = options.replicaId ?? `${hostname()}:${process.pid}`;
  }

  /** One poll: read the record, switch if it says so, register. true when Redis answered. Never throws. */
  poll(): Promise<boolean> {
    this.#polling ??= this.#poll().finally(() => (this.#polling = undefined));
    return this.#polling;
  }

  /** Polls every `pollMs` from now on, one poll after the other. */
  start(): void {
    if (this.#stopped || this.#timer) return;
    const next = () => {
      this.#timer = setTimeout(() => {
        void this.poll().then(() => {
          if (!this.#stopped) next();
        });
      }, this.#pollMs);
      this.#timer.unref();
    };
    next();
  }

  /** Stops polling and takes this replica's registration out (best effort: it goes stale anyway). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#resolveFirstRead(false);
    await this.#polling;
    try {
      await unregisterReplica(this.#options.redis, this.#options.keyPrefix, this.replicaId);
    } catch (error) {
      this.#logger.debug('could not unregister the replica', { error: describeError(error) });
    }
  }

  async #poll(): Promise<boolean> {
    const { redis, keyPrefix, service } = this.#options;
    let record;
    try {
      record = await readRolloutRecord(redis, keyPrefix);
    } catch (error) {
      this.#failed(error, 'cannot read the rollout record; keeping the current default and retrying');
      return false;
    }
    const first = !this.#read;
    this.#read = true;
    this.#resolveFirstRead(true);
    this.#apply(record?.version ?? this.#options.configuredDefault, first);
    // Stopped meanwhile: registering now would bring back the entry stop() takes out.
    if (this.#stopped) return true;
    try {
      await registerReplica(redis, keyPrefix, this.replicaId, {
        versions: service.modelVersions,
        defaultVersion: service.defaultModelVersion,
        seenMs: this.#now(),
        pollMs: this.#pollMs,
      });
    } catch (error) {
      // The default is followed all the same; only set-default's checks and status miss this replica.
      this.#failed(error, 'cannot register this replica in the rollout registry; following the default all the same');
      return false;
    }
    if (this.#failing) {
      this.#failing = false;
      this.#logger.info('rollout record readable again', { defaultVersion: service.defaultModelVersion });
    }
    return true;
  }

  #failed(error: unknown, message: string): void {
    this.#options.observer?.onPollFailed?.();
    const denied = /NOPERM/.test(describeError(error));
    // A Redis user without the commands will not get them by retrying: do not hold health back
    // for it (the polls go on, and work once the ACL is fixed).
    if (denied) this.#resolveFirstRead(true);
    // Once per outage: every poll fails the same way meanwhile.
    if (this.#failing) return;
    this.#failing = true;
    const fields = { defaultVersion: this.#options.service.defaultModelVersion, error: describeError(error) };
    if (denied) {
      this.#logger.error(`${message}: the Redis user lacks a command; grant HGETALL on ${this.#options.keyPrefix}:rollout:default and HSET, HDEL on ${this.#options.keyPrefix}:rollout:replicas (docs/deployment.md), or run with --rollout-poll-ms 0`, fields);
    } else {
      this.#logger.warn(message, fields);
    }
  }

  #apply(wanted: string, first: boolean): void {
    const { service, observer } = this.#options;
    const before = service.defaultModelVersion;
    try {
      if (service.setDefaultVersion(wanted)) {
        this.#logger.info('default model version switched', { from: before, to: wanted });
        observer?.onDefault?.(wanted);
      } else if (first) {
        observer?.onDefault?.(wanted);
      }
      this.#refused = undefined;
    } catch (error) {
      if (this.#refused === wanted) return;
      this.#refused = wanted;
      this.#logger.error('the rollout record names a model version this replica does not serve; keeping the current default', {
        wanted,
        defaultVersion: before,
        served: service.modelVersions,
        error: describeError(error),
      });
      observer?.onRefused?.(wanted);
      if (first) observer?.onDefault?.(before);
    }
  }
}
