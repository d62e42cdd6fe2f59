import test from 'ava';
import { startMetricsServer } from '../../metrics/metrics-server.js';
import { PipelineMetrics } from '../../metrics/pipeline-metrics.js';

// prom-client's process collectors sample the event loop every 10 ms: with no /metrics to read
// them (--metrics-port 0) they must not run at all (issue 18: idle CPU).
test('process metrics start with the metrics server, not before', async (t) => {
  const metrics = new PipelineMetrics();
  t.false((await metrics.registry.metrics()).includes('taste_process_cpu_seconds_total'), 'no collectors without a server');
  const server = await startMetricsServer(metrics, { host: '127.0.0.1', port: 0 });
  t.teardown(() => server.close());
  const body = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
  t.regex(body, /taste_process_cpu_seconds_total \d/);
  t.regex(body, /taste_nodejs_eventloop_lag_seconds/);
  metrics.startDefaultMetrics(); // idempotent: a second start would throw "already registered"
  t.pass();
});

test('defaultMetrics: false keeps them off even with a server', async (t) => {
  const metrics = new PipelineMetrics({ defaultMetrics: false });
  const server = await startMetricsServer(metrics, { host: '127.0.0.1', port: 0 });
  t.teardown(() => server.close());
  t.false((await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text()).includes('taste_process_'));
});
