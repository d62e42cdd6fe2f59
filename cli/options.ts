import { readFileSync } from 'node:fs';
import type { KafkaConnectionOptions } from '../consumers/kafka.js';
import type { StreamTopics } from '../consumers/stream-consumer.js';
import type { RedisConnectionOptions } from '../featurestore/redis-client.js';
import type { FlagValues } from './flags.js';
import { UsageError } from './flags.js';
import type { kafkaFlags, redisFlags } from './common-flags.js';

export function kafkaOptions(values: FlagValues<typeof kafkaFlags>, clientId: string): KafkaConnectionOptions {
  const brokers = values.brokers.split(',').map((broker) => broker.trim()).filter(Boolean);
  if (brokers.length === 0) throw new UsageError('--brokers needs at least one host:port');
  const caFile = values['kafka-tls-ca'];
  const options: KafkaConnectionOptions = { brokers, clientId, ssl: values['kafka-ssl'] || Boolean(caFile) };
  if (caFile) options.tlsCa = readPem(caFile, '--kafka-tls-ca');
  const mechanism = values['kafka-sasl-mechanism'];
  if (mechanism) {
    const username = values['kafka-sasl-username'];
    const password = values['kafka-sasl-password'];
    if (!username || !password) {
      throw new UsageError('--kafka-sasl-mechanism needs --kafka-sasl-username and TASTE_KAFKA_SASL_PASSWORD');
    }
    options.sasl = { mechanism: mechanism as 'plain' | 'scram-sha-256' | 'scram-sha-512', username, password };
  }
  return options;
}

export function topicsOf(values: FlagValues<typeof kafkaFlags>): StreamTopics {
  return { play: values['plays-topic'], search: values['searches-topic'], deadLetter: values['dead-letter-topic'], erasure: values['erasures-topic'] };
}

/** A time flag: ISO 8601 (2025-01-31T00:00:00Z) or ms since the epoch. */
export function parseTime(text: string, flag: string): number {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) {
    const ms = Number(trimmed);
    if (Number.isSafeInteger(ms)) return ms;
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(trimmed)) {
    const ms = Date.parse(trimmed);
    if (Number.isFinite(ms)) return ms;
  }
  throw new UsageError(`${flag} must be an ISO 8601 time (2025-01-31T00:00:00Z) or ms since the epoch, got "${text}"`);
}

const DURATION_UNITS_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** A duration flag: a number with a unit (500ms, 90s, 15m, 24h, 7d), or whole ms without one. */
export function parseDuration(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  const unit = (match?.[2] ?? 'ms') as keyof typeof DURATION_UNITS_MS;
  const ms = match ? Math.round(Number(match[1]) * DURATION_UNITS_MS[unit]) : Number.NaN;
  if (!Number.isSafeInteger(ms) || ms <= 0 || (match?.[2] === undefined && !/^\d+$/.test(text.trim()))) {
    throw new UsageError(`${flag} must be a positive duration such as 90s, 15m, 24h or 7d (or whole ms), got "${text}"`);
  }
  return ms;
}

function readPem(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    throw new UsageError(`${flag} ${path} cannot be read: ${(cause as Error).message}`);
  }
}

export function redisOptions(values: FlagValues<typeof redisFlags>, connectionName: string): RedisConnectionOptions {
  const caFile = values['redis-tls-ca'];
  const tlsCa = caFile ? readPem(caFile, '--redis-tls-ca') : undefined;
  return { url: values['redis-url'], cluster: values['redis-cluster'], connectionName, ...(tlsCa ? { tlsCa } : {}) };
}

/**
 * Listens for SIGINT/SIGTERM from construction on, so a signal during start-up is not lost.
 * `requested` resolves on the first one; a second signal exits at once (uncommitted work is
 * replayed by the next consumer, so nothing is lost), as does a stop slower than `graceMs`.
 */
export class ShutdownSignal {
  readonly requested: Promise<NodeJS.Signals>;
  #received = false;

  constructor(
    readonly log: (message: string) => void,
    readonly graceMs = 25_000,
  ) {
    this.requested = new Promise((resolve) => {
      const handler = (signal: NodeJS.Signals) => {
        if (this.#received) {
          log(`${signal} again: exiting now`);
          process.exit(130);
        }
        this.#received = true;
        log(`${signal}: shutting down (again to force)`);
        resolve(signal);
      };
      process.on('SIGINT', handler);
      process.on('SIGTERM', handler);
    });
  }

  /** Runs `stop` within the grace period. */
  async stopWith(stop: () => Promise<void>): Promise<void> {
    const timer = setTimeout(() => {
      this.log(`shutdown took longer than ${this.graceMs} ms: exiting`);
      process.exit(1);
    }, this.graceMs);
    timer.unref();
    try {
      await stop();
    } finally {
      clearTimeout(timer);
    }
  }
}
