import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PipelineMetrics } from './pipeline-metrics.js';

export interface MetricsServer {
  readonly port: number;
  /** What /readyz answers (and `taste_ready` says): 200 once set, 503 before and after `setReady(false)`. */
  setReady(ready: boolean): void;
  /**
   * Lines /readyz adds after its verdict, e.g. a suspended shadow model: not a reason to stop
   * traffic (the primary flows), but what an operator probing the pod must see.
   */
  setReadinessDetail(lines: readonly string[]): void;
  close(): Promise<void>;
}

/**
 * /metrics for Prometheus, /healthz (the process answers) and /readyz (the component is ready:
 * for a consumer, joined its group with the model loaded) for Kubernetes probes.
 */
export async function startMetricsServer(metrics: PipelineMetrics, options: { host?: string; port: number }): Promise<MetricsServer> {
  // Only now, when they can be read: metrics that are off must cost nothing.
  metrics.startDefaultMetrics();
  let ready = false;
  let detail: readonly string[] = [];
  metrics.ready.set(0);
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => {
          response.writeHead(200, { 'content-type': metrics.registry.contentType });
          response.end(text);
        },
        (error: Error) => {
          response.writeHead(500);
          response.end(error.message);
        },
      );
    } else if (path === '/healthz') {
      response.writeHead(200).end('ok');
    } else if (path === '/readyz') {
      response.writeHead(ready ? 200 : 503).end([ready ? 'ready' : 'not ready', ...detail].join('\n'));
    } else {
      response.writeHead(404).end('not found: try /metrics, /healthz or /readyz');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    setReady: (value) => {
      ready = value;
      metrics.ready.set(value ? 1 : 0);
    },
    setReadinessDetail: (lines) => {
      detail = [...lines];
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
