import { status } from '@grpc/grpc-js';
import type { StreamConsumerObserver } from '../consumers/stream-consumer.js';
import type { StreamJobObserver } from '../consumers/stream-job.js';
import type { FeatureStoreObserver } from '../featurestore/feature-store.js';
import type { InferencePoolObserver } from '../model/inference-pool.js';
import type { EmbeddingServiceObserver } from '../serving/embedding-service.js';
import type { PipelineMetrics } from './pipeline-metrics.js';

// The pipeline's modules report through observer callbacks and know nothing of Prometheus; these
// functions are the one place where what they report becomes metrics.

/** Redis latency and failures per feature-store operation. */
export function storeObserver(metrics: PipelineMetrics): FeatureStoreObserver {
  return {
    onOperation: (operation, seconds, ok) => {
      metrics.redisSeconds.observe({ operation }, seconds);
      if (!ok) metrics.redisErrors.inc({ operation });
    },
  };
}

/** Inference workers up, and the ones lost, by cause. */
export function poolObserver(metrics: PipelineMetrics): InferencePoolObserver {
  return {
    onStarted: (workers) => metrics.inferenceWorkers.set(workers),
    onEvent: (event) => {
      switch (event.type) {
        case 'worker-exited':
          metrics.inferenceWorkerFailures.inc({ reason: 'exited' });
          metrics.inferenceWorkers.set(event.workersLeft);
          return;
        case 'respawn-failed':
          metrics.inferenceWorkerFailures.inc({ reason: 'respawn_failed' });
          return;
        case 'task-timed-out':
          metrics.inferenceWorkerFailures.inc({ reason: event.workerReplaced ? 'timed_out' : 'timed_out_queued' });
          return;
        case 'worker-replaced':
          metrics.inferenceWorkers.set(event.workers);
          return;
        case 'health':
        case 'provider-chosen':
          return;
      }
    },
  };
}

/** Per step: records read, applied, skipped and dead-lettered, step sizes, conflicts, corrupt states, freshness, lag, each shadow's, and live quality per version. */
export function consumerObserver(metrics: PipelineMetrics): StreamConsumerObserver {
  return {
    onStep: ({ topic, partition, records, lag, summary, deadLetters }) => {
      metrics.eventsConsumed.inc({ topic }, records);
      metrics.eventsApplied.inc({ topic }, summary.applied);
      metrics.eventsSkipped.inc({ topic }, summary.duplicates);
      for (const letter of deadLetters) metrics.eventsDeadLettered.inc({ topic, reason: letter.rejection.reason });
      metrics.stepRecords.observe(records);
      metrics.stepUsers.observe(summary.writes);
      metrics.writeConflicts.inc(summary.conflicts);
      metrics.corruptStates.inc(summary.corruptStates.length);
      metrics.tombstoneHits.inc({ topic }, summary.tombstoneHits);
      for (const ms of summary.freshnessMs) metrics.freshnessSeconds.observe(ms / 1000);
      metrics.consumerLag.set({ topic, partition: String(partition) }, lag);
      for (const shadow of summary.shadows) {
        metrics.shadowEventsApplied.inc({ shadow_version: shadow.modelVersion }, shadow.applied);
        metrics.shadowEventsRefused.inc({ shadow_version: shadow.modelVersion }, shadow.rejectedEvents);
      }
      for (const { modelVersion, totals } of summary.quality) {
        const labels = { scored_version: modelVersion };
        metrics.liveQualitySamples.inc(labels, totals.samples);
        metrics.liveQualityHits10.inc(labels, totals.hits10);
        metrics.liveQualityNdcg10.inc(labels, totals.ndcg10Sum);
        metrics.liveQualityReciprocalRank.inc(labels, totals.reciprocalRankSum);
      }
    },
    onShadowSuspended: (modelVersion) => metrics.shadowRunning.set({ shadow_version: modelVersion }, 0),
    onReplaced: (reason) => metrics.consumerReplacements.inc({ reason }),
    onErasureStep: ({ topic, partition, records, lag, erased, alreadyErased, deadLetters }) => {
      metrics.eventsConsumed.inc({ topic }, records);
      metrics.erasureRequests.inc({ outcome: 'erased' }, erased);
      metrics.erasureRequests.inc({ outcome: 'already_erased' }, alreadyErased);
      metrics.erasureRequests.inc({ outcome: 'refused' }, deadLetters.length);
      metrics.usersErased.inc(erased);
      for (const letter of deadLetters) metrics.eventsDeadLettered.inc({ topic, reason: letter.rejection.reason });
      metrics.consumerLag.set({ topic, partition: String(partition) }, lag);
    },
  };
}

/** Everything the stream job reports: its store, inference pool, consumer and model time. */
export function streamJobObserver(metrics: PipelineMetrics): StreamJobObserver {
  return {
    store: storeObserver(metrics),
    pool: poolObserver(metrics),
    consumer: consumerObserver(metrics),
    onInference: (seconds) => metrics.inferenceSeconds.observe(seconds),
    onShadowInference: (modelVersion, seconds) => metrics.shadowInferenceSeconds.observe({ shadow_version: modelVersion }, seconds),
    onQualityRecordFailed: (modelVersion) => metrics.liveQualityRecordFailures.inc({ scored_version: modelVersion }),
  };
}

/** gRPC calls by method, status name and model version, and their latency. */
export function servingObserver(metrics: PipelineMetrics): EmbeddingServiceObserver {
  return {
    onCall: (method, code, seconds, modelVersion) => {
      metrics.grpcRequests.inc({ method, code: status[code] ?? String(code), model_version: modelVersion });
      metrics.grpcSeconds.observe({ method, model_version: modelVersion }, seconds);
    },
  };
}
