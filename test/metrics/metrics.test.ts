import test from 'ava';
import { createProducer } from '../../consumers/kafka.js';
import { startMetricsServer } from '../../metrics/metrics-server.js';
import { streamJobObserver } from '../../metrics/observers.js';
import { PipelineMetrics } from '../../metrics/pipeline-metrics.js';
import { eventually, unique } from '../helpers/environment.js';
import { play, sendPlays, startTestJob, testKafka, uniqueTopics } from '../helpers/pipeline.js';

test('a running job exposes its counters, latencies, freshness and lag on /metrics', async (t) => {
  const metrics = new PipelineMetrics();
  const server = await startMetricsServer(metrics, { host: '127.0.0.1', port: 0 });
  t.teardown(() => server.close());
  const base = `http://127.0.0.1:${server.port}`;
  t.is((await fetch(`${base}/healthz`)).status, 200);
  t.is((await fetch(`${base}/readyz`)).status, 503, 'not ready before the job says so');
  t.regex(await (await fetch(`${base}/metrics`)).text(), /^taste_ready 0$/m, 'taste_ready says what /readyz says');

  const topics = uniqueTopics();
  const job = await startTestJob({ topics, observer: streamJobObserver(metrics) });
  t.teardown(() => job.stop());
  await job.consumer.joined;
  server.setReady(true);
  t.is((await fetch(`${base}/readyz`)).status, 200);
  t.regex(await (await fetch(`${base}/metrics`)).text(), /^taste_ready 1$/m);

  const producer = createProducer(testKafka());
  await producer.connect();
  const users = Array.from({ length: 5 }, () => unique('user'));
  await sendPlays(producer, topics.play, users.flatMap((user) => [play(user, 'taste:track:3', Date.now() - 2000), play(user, 'taste:track:4', Date.now() - 1000)]));
  await producer.send({ topic: topics.play, messages: [{ key: 'x', value: Buffer.from('not protobuf at all') }] });
  await producer.disconnect();

  const text = await eventually(async () => {
    const body = await (await fetch(`${base}/metrics`)).text();
    return body.includes(`taste_events_consumed_total{topic="${topics.play}"} 11`) ? body : undefined;
  }, 'the records to be counted');
  t.regex(text, new RegExp(`taste_events_applied_total\\{topic="${topics.play.replaceAll('.', '\\.')}"\\} 10`));
  t.regex(text, /taste_events_dead_lettered_total\{topic="[^"]+",reason="UNDECODABLE"\} 1/);
  t.regex(text, /taste_freshness_seconds_count [1-9]/);
  t.regex(text, /taste_inference_seconds_count [1-9]/);
  t.regex(text, /taste_redis_seconds_count\{operation="write-state"\} [1-9]/);
  t.regex(text, /taste_consumer_lag\{topic="[^"]+",partition="\d+"\} 0/);
  t.regex(text, /taste_process_resident_memory_bytes \d+/);
});
