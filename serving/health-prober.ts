import { HealthImplementation } from 'grpc-health-check';
import type { RedisClient } from '../featurestore/feature-store.js';
import { silentLogger, type Logger } from '../common/logger.js';

export interface HealthProberOptions {
  /** Probed with PING: NOT_SERVING until it answers, and again while it does not. */
  redis: RedisClient;
  /** The names health checks ask for ('' is the whole server). */
  serviceNames: readonly string[];
  /** How often Redis is re-checked while it answers; also each PING's timeout. */
  intervalMs: number;
  /** @default silentLogger */
  logger?: Logger;
}

// While Redis does not answer, probe at least this often so SERVING comes back soon after it does.
const UNHEALTHY_PROBE_MS = 500;

/**
 * grpc.health.v1 for the serving server, driven by Redis: SERVING while Redis answers PING and
 * the operator has not asked for NOT_SERVING; NOT_SERVING before the first answer, during an
 * outage, and for good after `stop()`. Add it to a server with `addToServer`, then `start()`.
 */
export class HealthProber {
  readonly #health: HealthImplementation;
  readonly #redis: RedisClient;
  readonly #names: readonly string[];
  readonly #intervalMs: number;
  readonly #logger: Logger;
  #wanted = true;
  #redisAnswers = false;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: HealthProberOptions) {
    this.#redis = options.redis;
    this.#names = options.serviceNames;
    this.#intervalMs = options.intervalMs;
    this.#logger = options.logger ?? silentLogger;
    this.#health = new HealthImplementation(Object.fromEntries(this.#names.map((name) => [name, 'NOT_SERVING' as const])));
  }

  addToServer(server: Parameters<HealthImplementation['addToServer']>[0]): void {
    this.#health.addToServer(server);
  }

  /** Probes now, then on a timer that does not keep the process alive. */
  start(): void {
    void this.#probe();
  }

  /**
   * false: NOT_SERVING whatever Redis says (e.g. to drain before maintenance).
   * true: SERVING whenever Redis answers (the state after start).
   */
  setServing(serving: boolean): void {
    this.#wanted = serving;
    this.#publish();
  }

  /** NOT_SERVING from now on, and no more probes. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#publish();
  }

  async #probe(): Promise<void> {
    const answers = await ping(this.#redis, this.#intervalMs);
    if (this.#stopped) return;
    if (answers !== this.#redisAnswers) {
      this.#logger[answers ? 'info' : 'warn'](answers ? 'Redis answers: SERVING' : 'Redis does not answer: NOT_SERVING');
      this.#redisAnswers = answers;
      this.#publish();
    }
    this.#timer = setTimeout(() => void this.#probe(), answers ? this.#intervalMs : Math.min(this.#intervalMs, UNHEALTHY_PROBE_MS));
    this.#timer.unref();
  }

  #publish(): void {
    const status = !this.#stopped && this.#wanted && this.#redisAnswers ? 'SERVING' : 'NOT_SERVING';
    for (const name of this.#names) this.#health.setStatus(name, status);
  }
}

/** Whether Redis answers PING within `timeoutMs`; a failure or no answer in time is `false`. */
async function ping(redis: RedisClient, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  try {
    return (await Promise.race([redis.ping(), timeout])) === 'PONG';
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
