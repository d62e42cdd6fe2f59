import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { ErrorCodes, TasteError } from '../common/errors.js';
import { isPollTimeout, pollUntil } from '../common/poll.js';
import type { RedisClient } from './feature-store.js';

export interface RedisConnectionOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://` for TLS. */
  url: string;
  /** Treat `url` (comma-separated host:port list allowed) as Redis Cluster seed nodes. @default false */
  cluster?: boolean;
  /** Fail a command that gets no answer within this time. @default 2000 */
  commandTimeoutMs?: number;
  /** Name shown by CLIENT LIST. */
  connectionName?: string;
  /** PEM of the CA that signed the server's certificate (rediss://); default: Node's trusted CAs. */
  tlsCa?: string;
}

/**
 * A client for the hot paths: no offline queue (a command while disconnected fails at once
 * instead of piling up in memory) and a command timeout, so an outage surfaces as a retryable
 * error rather than a hang; callers back off and retry.
 */
export function createRedisClient(options: RedisConnectionOptions): RedisClient {
  const base: RedisOptions = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMs ?? 2000,
    enableAutoPipelining: true,
    lazyConnect: false,
    ...(options.connectionName ? { connectionName: options.connectionName } : {}),
    retryStrategy: (times) => Math.min(50 * 2 ** times, 2000),
  };
  let parsed: URL;
  try {
    parsed = new URL(options.url.split(',')[0]!.includes('://') ? options.url.split(',')[0]! : `redis://${options.url.split(',')[0]}`);
  } catch (cause) {
    throw new TasteError(ErrorCodes.CONFIG_INVALID, `Redis URL "${options.url}" is not a valid redis:// URL`, { cause });
  }
  const tls = parsed.protocol === 'rediss:' ? { tls: options.tlsCa ? { ca: options.tlsCa } : {} } : {};
  if (!options.cluster) return new Redis(options.url, { ...base, ...tls });
  const nodes = options.url.split(',').map((entry) => {
    const url = new URL(entry.includes('://') ? entry : `redis://${entry}`);
    return { host: url.hostname, port: Number(url.port || 6379) };
  });
  return new Cluster(nodes, {
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    redisOptions: {
      ...base,
      ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
      ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
      ...tls,
    },
  });
}

/**
 * Resolves once the client can run commands, or fails with a retryable error after `timeoutMs`
 * that carries the last connection error (wrong password, TLS, refused), so the fix is visible.
 */
export async function waitForRedis(client: RedisClient, timeoutMs = 10_000): Promise<void> {
  let lastError: Error | undefined;
  const onError = (error: Error) => {
    lastError = error;
  };
  client.on('error', onError);
  try {
    await pollUntil(
      async () => {
        if (client.status !== 'ready') return undefined;
        try {
          await client.ping();
          return true;
        } catch (error) {
          lastError = error as Error;
          return undefined;
        }
      },
      { what: 'Redis', timeoutMs, intervalMs: 50 },
    );
  } catch (error) {
    if (!isPollTimeout(error)) throw error;
    const why = lastError ? `: ${lastError.message}` : '';
    throw new TasteError(
      ErrorCodes.STORE_UNAVAILABLE,
      `Redis not reachable within ${timeoutMs} ms (status ${client.status})${why}; check --redis-url (host, port, password, rediss:// for TLS)`,
      { canRetry: true, ...(lastError ? { cause: lastError } : {}) },
    );
  } finally {
    client.off('error', onError);
  }
}
