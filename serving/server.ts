import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { describeError, ErrorCodes, TasteError } from '../common/errors.js';
import { silentLogger, type Logger } from '../common/logger.js';
import type { RedisClient } from '../featurestore/feature-store.js';
import { waitForRedis } from '../featurestore/redis-client.js';
import { DefaultVersionWatcher, type DefaultVersionWatcherOptions } from './default-version-watcher.js';
import { EmbeddingService, type EmbeddingServiceOptions } from './embedding-service.js';
import { HealthProber } from './health-prober.js';
import { ProtoReflection } from './reflection.js';
import { EMBEDDING_SERVICE_NAME } from './service-definition.js';

export interface ServingTlsOptions {
  /** PEM certificate chain the server presents. */
  certPath: string;
  /** PEM private key of that certificate. */
  keyPath: string;
  /** PEM CA bundle that client certificates are checked against (needed for requireClientCert). */
  caPath?: string;
  /** Refuse clients without a certificate signed by `caPath` (mutual TLS). @default false */
  requireClientCert?: boolean;
}

export interface ServingServerOptions {
  /** The embedding service: stores per model version, default version, batch limit. */
  service: EmbeddingServiceOptions;
  /** Probed with PING for health: NOT_SERVING until it answers, and again while it does not. */
  redis: RedisClient;
  /** Interface to listen on; '0.0.0.0' (or '::') to accept other hosts, e.g. in a container. @default '127.0.0.1' */
  host?: string;
  /** 0 picks a free port (see the returned `port`). @default 50051 */
  port?: number;
  /** Requests larger than this are refused with RESOURCE_EXHAUSTED before they are decoded. @default 1048576 (1 MiB) */
  maxReceiveMessageBytes?: number;
  /** How often health re-checks Redis while it answers; every 500 ms at most while it does not. @default 5000 */
  healthProbeIntervalMs?: number;
  /** Ping idle clients this often, to notice dead connections through NATs and load balancers. @default 60000 */
  keepaliveTimeMs?: number;
  /** Drop a connection whose keepalive ping gets no answer within this time. @default 20000 */
  keepaliveTimeoutMs?: number;
  /**
   * Ask clients to reconnect after this long (with a grace period for calls in flight), so that
   * long-lived channels spread onto new replicas behind a load balancer. @default 600000 (10 min)
   */
  maxConnectionAgeMs?: number;
  /** Time between health going NOT_SERVING and the server refusing calls, for load balancers to notice. @default 0 */
  drainDelayMs?: number;
  /** How long `close()` lets calls in flight finish before cutting them off. @default 10000 */
  shutdownTimeoutMs?: number;
  /** Serve grpc.reflection (v1 and v1alpha) so tools like grpcurl need no .proto. @default true */
  reflection?: boolean;
  /** TLS (optionally mutual); plaintext when absent. */
  tls?: ServingTlsOptions;
  /**
   * Follow the rollout record (`taste rollout set-default`, docs/rollout.md): the default model
   * version changes at runtime, within `pollMs` plus one Redis round. Without it, the default is
   * fixed at `service.defaultModelVersion`.
   */
  rollout?: Omit<DefaultVersionWatcherOptions, 'redis' | 'service' | 'configuredDefault' | 'logger'>;
  /** @default silentLogger */
  logger?: Logger;
}

export const defaultServingServerOptions = {
  host: '127.0.0.1',
  port: 50051,
  maxReceiveMessageBytes: 1024 * 1024,
  healthProbeIntervalMs: 5000,
  keepaliveTimeMs: 60_000,
  keepaliveTimeoutMs: 20_000,
  maxConnectionAgeMs: 600_000,
  drainDelayMs: 0,
  shutdownTimeoutMs: 10_000,
  reflection: true,
} as const;

export interface ServingServer {
  /** The bound port (the chosen one when `port` was 0). */
  readonly port: number;
  /** `host:port` for clients on this machine. */
  readonly address: string;
  readonly server: grpc.Server;
  readonly service: EmbeddingService;
  /** The rollout watcher, when `rollout` was given. */
  readonly rolloutWatcher: DefaultVersionWatcher | undefined;
  /**
   * false: report NOT_SERVING whatever Redis says (e.g. to drain before maintenance).
   * true: report SERVING whenever Redis answers (the state after start).
   */
  setServing(serving: boolean): void;
  /** NOT_SERVING, then a graceful shutdown that turns forced after `shutdownTimeoutMs`. Idempotent. */
  close(): Promise<void>;
}

/** How long the start waits for Redis before its first read of the rollout record; then polls retry. */
const ROLLOUT_CONNECT_WAIT_MS = 2000;

/** Names the health service answers for: the whole server ('') and the embedding service. */
export const HEALTH_SERVICE_NAMES = ['', EMBEDDING_SERVICE_NAME] as const;

/** Binds and starts the gRPC server. It answers health checks (NOT_SERVING) before Redis is up. */
export async function startServingServer(options: ServingServerOptions): Promise<ServingServer> {
  const settings = resolveSettings(options);
  const logger = (options.logger ?? silentLogger).child({ component: 'serving' });
  const credentials = await serverCredentials(options.tls);
  const service = new EmbeddingService({ logger: options.logger ?? silentLogger, ...options.service });
  const health = new HealthProber({ redis: options.redis, serviceNames: HEALTH_SERVICE_NAMES, intervalMs: settings.healthProbeIntervalMs, logger });

  const watcher = options.rollout
    ? new DefaultVersionWatcher({ ...options.rollout, redis: options.redis, service, configuredDefault: service.defaultModelVersion, logger: options.logger ?? silentLogger })
    : undefined;
  // Read once before the first request; when Redis does not answer yet, health stays NOT_SERVING
  // until a poll has read the record, so no replica is healthy with a default it has not checked.
  // A client that is still connecting fails commands at once (no offline queue): give it a moment
  // first, so a normal start does not count as a failed poll.
  if (watcher) await waitForRedis(options.redis, ROLLOUT_CONNECT_WAIT_MS).catch(() => undefined);
  const rolloutRead = watcher ? await watcher.poll() : true;

  const server = createGrpcServer(settings);
  service.addToServer(server);
  health.addToServer(server);
  if (settings.reflection) new ProtoReflection().addToServer(server);
  const port = await bind(server, settings, credentials);
  if (!rolloutRead) health.setServing(false);
  health.start();
  if (watcher) {
    watcher.start();
    if (!rolloutRead) void watcher.firstRead.then((read) => read && health.setServing(true));
  }
  logger.info('listening', { host: settings.host, port, tls: options.tls !== undefined });

  let closing: Promise<void> | undefined;
  return {
    port,
    address: `${settings.host === '0.0.0.0' || settings.host === '::' ? '127.0.0.1' : hostPart(settings.host)}:${port}`,
    server,
    service,
    rolloutWatcher: watcher,
    setServing: (serving) => health.setServing(serving),
    close() {
      closing ??= watcher ? watcher.stop().then(() => shutdown(server, health, settings, logger)) : shutdown(server, health, settings, logger);
      return closing;
    },
  };
}

function createGrpcServer(settings: Settings): grpc.Server {
  return new grpc.Server({
    // Channelz keeps per-call counters and traces that only a channelz client reads; taste serves none.
    'grpc.enable_channelz': 0,
    'grpc.max_receive_message_length': settings.maxReceiveMessageBytes,
    'grpc.keepalive_time_ms': settings.keepaliveTimeMs,
    'grpc.keepalive_timeout_ms': settings.keepaliveTimeoutMs,
    'grpc.max_connection_age_ms': settings.maxConnectionAgeMs,
    'grpc.max_connection_age_grace_ms': settings.shutdownTimeoutMs,
  });
}

/** An IPv6 address in brackets, as a `host:port` target needs it. */
function hostPart(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** The bound port (the chosen one when `settings.port` is 0). */
function bind(server: grpc.Server, settings: Settings, credentials: grpc.ServerCredentials): Promise<number> {
  const target = `${hostPart(settings.host)}:${settings.port}`;
  return new Promise<number>((resolve, reject) => {
    server.bindAsync(target, credentials, (error, bound) => {
      if (error) {
        server.forceShutdown();
        reject(
          new TasteError(ErrorCodes.CONFIG_INVALID, `could not listen on ${target}: ${error.message} (choose another port, or 0 for any free one)`, {
            cause: error,
          }),
        );
      } else resolve(bound);
    });
  });
}

/** NOT_SERVING, the drain delay, then a graceful shutdown that turns forced after the timeout. */
async function shutdown(server: grpc.Server, health: HealthProber, settings: Settings, logger: Logger): Promise<void> {
  health.stop();
  if (settings.drainDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, settings.drainDelayMs));
  await new Promise<void>((resolve) => {
    // Health Watch streams never end on their own, so a forced shutdown is the usual ending
    // when a client watches; unary calls in flight get until the timeout.
    const force = setTimeout(() => {
      logger.warn('calls still running after shutdownTimeoutMs; cutting them off');
      server.forceShutdown();
      resolve();
    }, settings.shutdownTimeoutMs);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
  logger.info('stopped');
}

async function serverCredentials(tls: ServingTlsOptions | undefined): Promise<grpc.ServerCredentials> {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  if (tls.requireClientCert && !tls.caPath) {
    throw configError('tls.requireClientCert needs tls.caPath: the CA that signs client certificates');
  }
  // One after the other, so with several bad paths the error always names the first one.
  const cert = await readPem(tls.certPath, 'tls.certPath');
  const key = await readPem(tls.keyPath, 'tls.keyPath');
  const ca = tls.caPath ? await readPem(tls.caPath, 'tls.caPath') : null;
  return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], tls.requireClientCert ?? false);
}

async function readPem(path: string, option: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (cause) {
    throw configError(`${option}: cannot read "${path}": ${describeError(cause)}`, cause);
  }
}

type Settings = Required<Pick<ServingServerOptions, keyof typeof defaultServingServerOptions>>;

function resolveSettings(options: ServingServerOptions): Settings {
  const d = defaultServingServerOptions;
  const settings: Settings = {
    host: options.host ?? d.host,
    port: options.port ?? d.port,
    maxReceiveMessageBytes: options.maxReceiveMessageBytes ?? d.maxReceiveMessageBytes,
    healthProbeIntervalMs: options.healthProbeIntervalMs ?? d.healthProbeIntervalMs,
    keepaliveTimeMs: options.keepaliveTimeMs ?? d.keepaliveTimeMs,
    keepaliveTimeoutMs: options.keepaliveTimeoutMs ?? d.keepaliveTimeoutMs,
    maxConnectionAgeMs: options.maxConnectionAgeMs ?? d.maxConnectionAgeMs,
    drainDelayMs: options.drainDelayMs ?? d.drainDelayMs,
    shutdownTimeoutMs: options.shutdownTimeoutMs ?? d.shutdownTimeoutMs,
    reflection: options.reflection ?? d.reflection,
  };
  if (!Number.isInteger(settings.port) || settings.port < 0 || settings.port > 65_535) {
    throw configError(`port must be an integer in 0..65535 (0: any free port), got ${settings.port}`);
  }
  if (settings.host === '') throw configError("host is empty: use '127.0.0.1', '0.0.0.0' or an interface address");
  const positive = [
    'maxReceiveMessageBytes',
    'healthProbeIntervalMs',
    'keepaliveTimeMs',
    'keepaliveTimeoutMs',
    'maxConnectionAgeMs',
    'shutdownTimeoutMs',
  ] as const;
  for (const name of positive) {
    const value = settings[name];
    if (!Number.isInteger(value) || value < 1) throw configError(`${name} must be a positive integer, got ${value}`);
  }
  if (!Number.isInteger(settings.drainDelayMs) || settings.drainDelayMs < 0) {
    throw configError(`drainDelayMs must be an integer >= 0, got ${settings.drainDelayMs}`);
  }
  return settings;
}

function configError(message: string, cause?: unknown): TasteError {
  return new TasteError(ErrorCodes.CONFIG_INVALID, `serving: ${message}`, cause === undefined ? {} : { cause });
}
