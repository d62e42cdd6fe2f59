import { status } from '@grpc/grpc-js';
import test from 'ava';
import type { ConsumerStep } from '../../consumers/stream-consumer.js';
import { consumerObserver, poolObserver, servingObserver, storeObserver, streamJobObserver } from '../../metrics/observers.js';
import { PipelineMetrics } from '../../metrics/pipeline-metrics.js';
import type { UpdateSummary } from '../../updater/updater.js';

// Each observer is fed hand-made reports; the expected exposition lines (name, labels, value) are
// written out here by hand, as Prometheus, the alerts and the dashboards read them.

async function exposition(metrics: PipelineMetrics): Promise<string[]> {
  return (await metrics.registry.metrics()).split('\n');
}

function summary(overrides: Partial<UpdateSummary>): UpdateSummary {
  return { users: 0, applied: 0, duplicates: 0, writes: 0, conflicts: 0, rejected: [], newestEventMs: 0, freshnessMs: [], corruptStates: [], tombstoneHits: 0, shadows: [], quality: [], ...overrides };
}

function step(overrides: Partial<ConsumerStep>): ConsumerStep {
  return { topic: 'taste.plays.v1', partition: 3, records: 0, lag: 0, summary: summary({}), deadLetters: [], ...overrides };
}

const undecodable = {
  topic: 'taste.plays.v1',
  partition: 3,
  offset: '41',
  key: null,
  value: Buffer.from('not protobuf'),
  timestamp: '0',
  rejection: { reason: 'UNDECODABLE', detail: 'not a PlayEvent' },
} as const;

test('the consumer observer counts records per topic, step sizes, conflicts, corrupt states, freshness, and sets the lag', async (t) => {
  const metrics = new PipelineMetrics({ defaultMetrics: false });
  const observer = consumerObserver(metrics);
  observer.onStep?.(
    step({
      records: 7,
      lag: 12,
      summary: summary({ applied: 5, duplicates: 1, writes: 4, conflicts: 2, corruptStates: ['user-1'], freshnessMs: [1500, 250] }),
      deadLetters: [undecodable],
    }),
  );
  observer.onStep?.(step({ records: 3, lag: 0, summary: summary({ applied: 3, writes: 2 }) }));
  observer.onStep?.(step({ topic: 'taste.searches.v1', partition: 0, records: 2, lag: 5, summary: summary({ applied: 2, writes: 1 }) }));

  const lines = await exposition(metrics);
  for (const line of [
    'taste_events_consumed_total{topic="taste.plays.v1"} 10',
    'taste_events_consumed_total{topic="taste.searches.v1"} 2',
    'taste_events_applied_total{topic="taste.plays.v1"} 8',
    'taste_events_skipped_total{topic="taste.plays.v1"} 1',
    'taste_events_dead_lettered_total{topic="taste.plays.v1",reason="UNDECODABLE"} 1',
    'taste_step_records_sum 12',
    'taste_step_records_count 3',
    'taste_step_users_sum 7',
    'taste_write_conflicts_total 2',
    'taste_corrupt_states_total 1',
    'taste_freshness_seconds_sum 1.75',
    'taste_freshness_seconds_count 2',
    // A gauge: the last step's lag, not a sum.
    'taste_consumer_lag{topic="taste.plays.v1",partition="3"} 0',
    'taste_consumer_lag{topic="taste.searches.v1",partition="0"} 5',
  ]) {
    t.true(lines.includes(line), line);
  }
});

test('the consumer observer counts erasure requests by outcome, users erased and tombstone hits', async (t) => {
  const metrics = new PipelineMetrics({ defaultMetrics: false });
  const observer = consumerObserver(metrics);
  const erasures = 'taste.erasures.v1';
  observer.onErasureStep?.({ topic: erasures, partition: 1, records: 4, lag: 2, erased: 2, alreadyErased: 1, deadLetters: [{ ...undecodable, topic: erasures }] });
  observer.onErasureStep?.({ topic: erasures, partition: 1, records: 1, lag: 0, erased: 1, alreadyErased: 0, deadLetters: [] });
  observer.onStep?.(step({ records: 6, summary: summary({ applied: 2, writes: 1, tombstoneHits: 4 }) }));

  const lines = await exposition(metrics);
  for (const line of [
    'taste_erasure_requests_total{outcome="erased"} 3',
    'taste_erasure_requests_total{outcome="already_erased"} 1',
    'taste_erasure_requests_total{outcome="refused"} 1',
    'taste_users_erased_total 3',
    'taste_tombstone_hits_total{topic="taste.plays.v1"} 4',
    'taste_events_consumed_total{topic="taste.erasures.v1"} 5',
    'taste_events_dead_lettered_total{topic="taste.erasures.v1",reason="UNDECODABLE"} 1',
    'taste_consumer_lag{topic="taste.erasures.v1",partition="1"} 0',
  ]) {
    t.true(lines.includes(line), line);
  }
});

test('the store observer times every Redis operation and counts the failed ones', async (t) => {
  const metrics = new PipelineMetrics({ defaultMetrics: false });
  const observer = storeObserver(metrics);
  observer.onOperation?.('load-state', 0.002, true);
  observer.onOperation?.('write-state', 0.25, false);
  observer.onOperation?.('write-state', 0.5, true);

  const lines = await exposition(metrics);
  for (const line of [
    'taste_redis_seconds_count{operation="load-state"} 1',
    'taste_redis_seconds_sum{operation="load-state"} 0.002',
    'taste_redis_seconds_count{operation="write-state"} 2',
    'taste_redis_seconds_sum{operation="write-state"} 0.75',
    'taste_redis_errors_total{operation="write-state"} 1',
  ]) {
    t.true(lines.includes(line), line);
  }
  t.false(
    lines.some((line) => line.startsWith('taste_redis_errors_total{operation="load-state"}')),
    'no failure counted for an operation that worked',
  );
});

test('the pool observer follows the workers up and counts each loss by its cause', async (t) => {
  const metrics = new PipelineMetrics({ defaultMetrics: false });
  const observer = poolObserver(metrics);
  observer.onStarted?.(2);
  t.true((await exposition(metrics)).includes('taste_inference_workers 2'), 'the workers started');

  observer.onEvent?.({ type: 'worker-exited', workersLeft: 1 });
  t.true((await exposition(metrics)).includes('taste_inference_workers 1'), 'one lost');

  observer.onEvent?.({ type: 'task-timed-out', timeoutMs: 500, workerReplaced: true });
  observer.onEvent?.({ type: 'task-timed-out', timeoutMs: 500, workerReplaced: false });
  observer.onEvent?.({ type: 'health', healthy: false });
  observer.onEvent?.({ type: 'worker-replaced', workers: 2 });
  const lines = await exposition(metrics);
  for (const line of [
    'taste_inference_workers 2',
    'taste_inference_worker_failures_total{reason="exited"} 1',
    'taste_inference_worker_failures_total{reason="timed_out"} 1',
    'taste_inference_worker_failures_total{reason="timed_out_queued"} 1',
  ]) {
    t.true(lines.includes(line), line);
  }
  t.false(lines.some((line) => line.startsWith('taste_inference_worker_failures_total{reason="respawn_failed"}')));
});

test('the stream job observer wires the store, the pool, the consumer and the model time into one registry', async (t) => {
  const metrics = new PipelineMetrics({ defaultMetrics: false });
  const observer = streamJobObserver(metrics);
  observer.onInference?.(0.5);
  observer.onInference?.(0.25);
  observer.store?.onOperation?.('load-state', 0.125, true);
  observer.pool?.onStarted?.(3);
  observer.consumer?.onStep?.(step({ records: 4, lag: 1 }));

  const lines = await exposition(metrics);
  for (const line of [
    'taste_inference_seconds_sum 0.75',
    'taste_inference_seconds_count 2',
    'taste_redis_seconds_sum{operation="load-state"} 0.125',
    'taste_inference_workers 3',
    'taste_events_consumed_total{topic="taste.plays.v1"} 4',
    'taste_consumer_lag{topic="taste.plays.v1",partition="3"} 1',
  ]) {
    t.true(lines.includes(line), line);
  }
});

test('the serving observer counts calls by method, gRPC status name and model version, and times them', async (t) => {
  const metrics = new PipelineMetrics({ defaultMetrics: false });
  const observer = servingObserver(metrics);
  observer.onCall?.('GetUserEmbedding', status.OK, 0.0625, 'v1');
  observer.onCall?.('GetUserEmbedding', status.OK, 0.125, 'v1');
  observer.onCall?.('GetUserEmbedding', status.OK, 0.25, 'v2');
  observer.onCall?.('BatchGetUserEmbeddings', status.NOT_FOUND, 0.5, 'unserved');
  observer.onCall?.('BatchGetUserEmbeddings', 99 as status, 0.25, 'v1');

  const lines = await exposition(metrics);
  for (const line of [
    'taste_grpc_requests_total{method="GetUserEmbedding",code="OK",model_version="v1"} 2',
    'taste_grpc_requests_total{method="GetUserEmbedding",code="OK",model_version="v2"} 1',
    'taste_grpc_requests_total{method="BatchGetUserEmbeddings",code="NOT_FOUND",model_version="unserved"} 1',
    // A code grpc-js has no name for is counted under its number.
    'taste_grpc_requests_total{method="BatchGetUserEmbeddings",code="99",model_version="v1"} 1',
    'taste_grpc_seconds_count{method="GetUserEmbedding",model_version="v1"} 2',
    'taste_grpc_seconds_sum{method="GetUserEmbedding",model_version="v1"} 0.1875',
    'taste_grpc_seconds_sum{method="BatchGetUserEmbeddings",model_version="unserved"} 0.5',
  ]) {
    t.true(lines.includes(line), line);
  }
});

test('a process that runs one model labels every metric with its version; one that serves several names each in taste_model_info', async (t) => {
  const consumer = new PipelineMetrics({ defaultMetrics: false });
  consumer.eventsApplied.inc({ topic: 'taste.plays.v1' }, 3);
  consumer.runsModel('m-2026', 'stateful');
  const consumerLines = await exposition(consumer);
  t.true(consumerLines.includes('taste_events_applied_total{topic="taste.plays.v1",model_version="m-2026"} 3'), consumerLines.join('\n'));
  t.true(consumerLines.includes('taste_model_info{model_version="m-2026",model_kind="stateful"} 1'));

  const server = new PipelineMetrics({ defaultMetrics: false });
  server.servesModel('m-2026', 'windowed');
  server.servesModel('m-2025', 'none');
  const serverLines = await exposition(server);
  t.true(serverLines.includes('taste_model_info{model_version="m-2026",model_kind="windowed"} 1'));
  t.true(serverLines.includes('taste_model_info{model_version="m-2025",model_kind="none"} 1'));
});

test('the registry declares the metric families the alerts, dashboards and docs name, with their types', async (t) => {
  const declared = (await exposition(new PipelineMetrics({ defaultMetrics: false }))).filter((line) => line.startsWith('# TYPE '));
  t.deepEqual(declared.sort(), [
    '# TYPE taste_consumer_lag gauge',
    '# TYPE taste_consumer_replacements_total counter',
    '# TYPE taste_corrupt_states_total counter',
    '# TYPE taste_erasure_requests_total counter',
    '# TYPE taste_events_applied_total counter',
    '# TYPE taste_events_consumed_total counter',
    '# TYPE taste_events_dead_lettered_total counter',
    '# TYPE taste_events_skipped_total counter',
    '# TYPE taste_freshness_seconds histogram',
    '# TYPE taste_grpc_requests_total counter',
    '# TYPE taste_grpc_seconds histogram',
    '# TYPE taste_inference_seconds histogram',
    '# TYPE taste_inference_worker_failures_total counter',
    '# TYPE taste_inference_workers gauge',
    '# TYPE taste_live_quality_hits_at_10_total counter',
    '# TYPE taste_live_quality_ndcg_at_10_total counter',
    '# TYPE taste_live_quality_reciprocal_rank_total counter',
    '# TYPE taste_live_quality_record_failures_total counter',
    '# TYPE taste_live_quality_samples_total counter',
    '# TYPE taste_model_info gauge',
    '# TYPE taste_ready gauge',
    '# TYPE taste_redis_errors_total counter',
    '# TYPE taste_redis_seconds histogram',
    '# TYPE taste_shadow_events_applied_total counter',
    '# TYPE taste_shadow_events_refused_total counter',
    '# TYPE taste_shadow_inference_seconds histogram',
    '# TYPE taste_shadow_running gauge',
    '# TYPE taste_step_records histogram',
    '# TYPE taste_step_users histogram',
    '# TYPE taste_tombstone_hits_total counter',
    '# TYPE taste_users_erased_total counter',
    '# TYPE taste_write_conflicts_total counter',
  ]);
});

test('live quality is exported as sums per scored version, so HR@10, NDCG@10 and MRR are ratios of their rates', async (t) => {
  const metrics = new PipelineMetrics({ defaultMetrics: false });
  metrics.runsModel('v1', 'windowed');
  const observer = consumerObserver(metrics);
  const quality = [
    { modelVersion: 'v1', totals: { samples: 4, hits10: 3, ndcg10Sum: 1.5, reciprocalRankSum: 2.25 } },
    { modelVersion: 'v2', totals: { samples: 4, hits10: 1, ndcg10Sum: 0.5, reciprocalRankSum: 0.75 } },
  ];
  observer.onStep!(step({ summary: summary({ quality }) }));
  observer.onStep!(step({ summary: summary({ quality: [quality[0]!] }) }));
  streamJobObserver(metrics).onQualityRecordFailed!('v2', new Error('Redis away'));
  streamJobObserver(metrics).onShadowInference!('v2', 0.004);
  const lines = await exposition(metrics);
  for (const line of [
    'taste_live_quality_samples_total{scored_version="v1",model_version="v1"} 8',
    'taste_live_quality_hits_at_10_total{scored_version="v1",model_version="v1"} 6',
    'taste_live_quality_ndcg_at_10_total{scored_version="v1",model_version="v1"} 3',
    'taste_live_quality_reciprocal_rank_total{scored_version="v1",model_version="v1"} 4.5',
    'taste_live_quality_samples_total{scored_version="v2",model_version="v1"} 4',
    'taste_live_quality_hits_at_10_total{scored_version="v2",model_version="v1"} 1',
    'taste_live_quality_record_failures_total{scored_version="v2",model_version="v1"} 1',
    'taste_shadow_inference_seconds_count{model_version="v1",shadow_version="v2"} 1',
    'taste_shadow_inference_seconds_bucket{le="0.005",model_version="v1",shadow_version="v2"} 1',
  ]) {
    t.true(lines.includes(line), line);
  }
});

test('a shadow model\'s events and its suspension are exported under its own version', async (t) => {
  const metrics = new PipelineMetrics({ defaultMetrics: false });
  metrics.runsModel('v1', 'windowed');
  metrics.runsShadow('v2', 'stateful');
  const observer = consumerObserver(metrics);
  observer.onStep!(step({ summary: summary({ applied: 5, shadows: [{ modelVersion: 'v2', applied: 4, writes: 2, rejectedEvents: 1, active: true }] }) }));
  observer.onShadowSuspended!('v2', 'TASTE_INFERENCE_FAILED: broken');
  const lines = await exposition(metrics);
  for (const line of [
    'taste_model_info{model_version="v2",model_kind="stateful"} 1',
    'taste_shadow_events_applied_total{shadow_version="v2",model_version="v1"} 4',
    'taste_shadow_events_refused_total{shadow_version="v2",model_version="v1"} 1',
    'taste_shadow_running{shadow_version="v2",model_version="v1"} 0',
    'taste_events_applied_total{topic="taste.plays.v1",model_version="v1"} 5',
  ]) {
    t.true(lines.includes(line), line);
  }
});
