import anyTest, { type TestFn } from 'ava';
import { startMetricsServer } from '../../metrics/metrics-server.js';
import { streamJobObserver } from '../../metrics/observers.js';
import { PipelineMetrics } from '../../metrics/pipeline-metrics.js';
import { eventually, unique } from '../helpers/environment.js';
import { workerRecorder } from '../helpers/inference-faults.js';
import { play, sendPlays, type StreamJobContext, uniqueTopics, withStreamJobs } from '../helpers/pipeline.js';

const test = anyTest as TestFn<StreamJobContext>;
const job = withStreamJobs(test);

test('when inference dies and its first replacements fail, the member turns not ready, then recovers and applies every event', async (t) => {
  // Start 0 crashes on its first run; the next two replacements cannot load the model.
  const { started, createWorker } = workerRecorder((start, init) =>
    start === 0 ? { onFirstRequest: 'crash' } : start <= 2 ? { init: { ...init, modelPath: `${init.modelPath}.missing` } } : {},
  );
  const metrics = new PipelineMetrics({ defaultMetrics: false });
  const server = await startMetricsServer(metrics, { host: '127.0.0.1', port: 0 });
  t.teardown(() => server.close());
  const readyz = async () => (await fetch(`http://127.0.0.1:${server.port}/readyz`)).status;
  const readiness: boolean[] = [];
  const topics = uniqueTopics();
  const stream = await job(t, {
    topics,
    observer: streamJobObserver(metrics),
    createInferenceWorker: createWorker,
    onReadinessChange: (ready) => {
      readiness.push(ready);
      server.setReady(ready);
    },
  });
  await eventually(async () => ((await readyz()) === 200 ? true : undefined), 'ready once joined');

  const users = Array.from({ length: 3 }, () => unique('user'));
  const at = Date.now() - 10_000;
  await sendPlays(t.context.producer, topics.play, users.flatMap((user) => [play(user, 'taste:track:3', at), play(user, 'taste:track:4', at + 1000)]));

  await eventually(async () => ((await readyz()) === 503 ? true : undefined), 'not ready while no inference worker runs', 20_000, 10);
  const written = await eventually(async () => {
    const found = await stream.store.readEmbeddings(users);
    return found.every((embedding) => embedding?.eventsInWindow === 2) ? found : undefined;
  }, 'every event applied once a replacement started', 60_000);
  t.is(written.length, 3);
  t.is(await readyz(), 200);
  t.deepEqual(readiness, [true, false, true]);
  t.is(started.length, 4);
  t.is(stream.consumer.stats.applied, 6);

  const text = await metrics.registry.metrics();
  t.regex(text, /taste_inference_worker_failures_total\{reason="exited"\} 1/);
  t.regex(text, /taste_inference_worker_failures_total\{reason="respawn_failed"\} 2/);
  t.regex(text, /taste_inference_workers 1/);
});
