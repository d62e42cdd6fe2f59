import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const FRESHNESS_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/**
 * Every metric of the pipeline, in one registry per process (prom-client). Names follow the
 * Prometheus conventions: `_total` counters, `_seconds` histograms.
 */
export class PipelineMetrics {
  readonly registry = new Registry();

  readonly eventsConsumed = new Counter({ name: 'taste_events_consumed_total', help: 'Records read from Kafka', labelNames: ['topic'] as const, registers: [this.registry] });
  readonly eventsApplied = new Counter({ name: 'taste_events_applied_total', help: 'Events applied to a user state', labelNames: ['topic'] as const, registers: [this.registry] });
  readonly eventsSkipped = new Counter({ name: 'taste_events_skipped_total', help: 'Events dropped as already applied (redeliveries)', labelNames: ['topic'] as const, registers: [this.registry] });
  readonly eventsDeadLettered = new Counter({ name: 'taste_events_dead_lettered_total', help: 'Records sent to the dead-letter topic', labelNames: ['topic', 'reason'] as const, registers: [this.registry] });
  readonly stepRecords = new Histogram({ name: 'taste_step_records', help: 'Records per applied step', buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000], registers: [this.registry] });
  readonly stepUsers = new Histogram({ name: 'taste_step_users', help: 'Users (one inference each) per applied step', buckets: [1, 5, 10, 25, 50, 100, 250, 500], registers: [this.registry] });
  readonly inferenceWorkers = new Gauge({ name: 'taste_inference_workers', help: 'Inference workers ready to run (0: inference is down, the member is not ready)', registers: [this.registry] });
  readonly inferenceWorkerFailures = new Counter({ name: 'taste_inference_worker_failures_total', help: 'Inference workers lost (exited, timed_out), replacements that failed to start (respawn_failed), runs that timed out waiting for a worker (timed_out_queued)', labelNames: ['reason'] as const, registers: [this.registry] });
  readonly inferenceSeconds = new Histogram({ name: 'taste_inference_seconds', help: 'Model time per call (all users of a step)', buckets: LATENCY_BUCKETS, registers: [this.registry] });
  readonly freshnessSeconds = new Histogram({ name: 'taste_freshness_seconds', help: 'Event time of the newest applied event to embedding written', buckets: FRESHNESS_BUCKETS, registers: [this.registry] });
  readonly redisSeconds = new Histogram({ name: 'taste_redis_seconds', help: 'Feature store operations', labelNames: ['operation'] as const, buckets: LATENCY_BUCKETS, registers: [this.registry] });
  readonly redisErrors = new Counter({ name: 'taste_redis_errors_total', help: 'Feature store operations that failed', labelNames: ['operation'] as const, registers: [this.registry] });
  readonly corruptStates = new Counter({ name: 'taste_corrupt_states_total', help: 'Stored user states that could not be decoded and were started over', registers: [this.registry] });
  readonly writeConflicts = new Counter({ name: 'taste_write_conflicts_total', help: 'Compare-and-set writes lost to another writer (then retried)', registers: [this.registry] });
  readonly consumerReplacements = new Counter({
    name: 'taste_consumer_replacements_total',
    help: 'Kafka consumers replaced because kafkajs would not resume them: crashed (an error it does not retry) or stalled (no sign of life past the stall timeout)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly erasureRequests = new Counter({
    name: 'taste_erasure_requests_total',
    help: 'Erasure requests read: erased (keys deleted, tombstone set), already_erased (a tombstone as late was there: a redelivery or an older request), refused (malformed, dead-lettered)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly usersErased = new Counter({ name: 'taste_users_erased_total', help: 'Users whose keys an erasure deleted (every model version) and whose tombstone it set', registers: [this.registry] });
  readonly tombstoneHits = new Counter({ name: 'taste_tombstone_hits_total', help: 'Events dropped because their user was erased after their event time', labelNames: ['topic'] as const, registers: [this.registry] });
  readonly consumerLag = new Gauge({ name: 'taste_consumer_lag', help: 'Records behind the end of the partition, as of the last step', labelNames: ['topic', 'partition'] as const, registers: [this.registry] });
  readonly grpcRequests = new Counter({
    name: 'taste_grpc_requests_total',
    help: 'gRPC calls by method, status code and the model version they asked for ("unserved": a version not served here)',
    labelNames: ['method', 'code', 'model_version'] as const,
    registers: [this.registry],
  });
  readonly grpcSeconds = new Histogram({
    name: 'taste_grpc_seconds',
    help: 'gRPC call latency, by method and model version',
    labelNames: ['method', 'model_version'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly ready = new Gauge({
    name: 'taste_ready',
    help: 'What /readyz answers: 1 ready (a consumer in its group with an inference worker up; a server serving), 0 not',
    registers: [this.registry],
  });
  readonly modelInfo = new Gauge({
    name: 'taste_model_info',
    help: 'The models this process runs or serves, always 1, by version and kind (windowed, stateful; none: served from the store without its model loaded)',
    labelNames: ['model_version', 'model_kind'] as const,
    registers: [this.registry],
  });

  readonly shadowEventsApplied = new Counter({
    name: 'taste_shadow_events_applied_total',
    help: 'Events applied to a shadow model\'s states, by shadow version (model_version is the primary\'s)',
    labelNames: ['shadow_version'] as const,
    registers: [this.registry],
  });
  readonly shadowEventsRefused = new Counter({
    name: 'taste_shadow_events_refused_total',
    help: 'Events a shadow model refused for their user alone (NaN, or a failure of that user): not applied in that version',
    labelNames: ['shadow_version'] as const,
    registers: [this.registry],
  });
  readonly shadowInferenceSeconds = new Histogram({
    name: 'taste_shadow_inference_seconds',
    help: 'Model time per call of a shadow model\'s pool (all users of a step in that version)',
    labelNames: ['shadow_version'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly shadowRunning = new Gauge({
    name: 'taste_shadow_running',
    help: 'Shadow models of this consumer: 1 running, 0 suspended after its inference failed (its keys are stale from then on)',
    labelNames: ['shadow_version'] as const,
    registers: [this.registry],
  });

  // Live quality (docs/rollout.md): sums, so any window's HR@10, NDCG@10 and MRR are ratios of
  // rates, e.g. rate(taste_live_quality_hits_at_10_total[1h]) / rate(taste_live_quality_samples_total[1h]).
  readonly liveQualitySamples = new Counter({
    name: 'taste_live_quality_samples_total',
    help: 'Sampled plays ranked against the embedding the scored version held just before them (--quality-sample-rate)',
    labelNames: ['scored_version'] as const,
    registers: [this.registry],
  });
  readonly liveQualityHits10 = new Counter({
    name: 'taste_live_quality_hits_at_10_total',
    help: 'Of the sampled plays, those in the top 10 of the scored version\'s items: HR@10 = this / samples',
    labelNames: ['scored_version'] as const,
    registers: [this.registry],
  });
  readonly liveQualityNdcg10 = new Counter({
    name: 'taste_live_quality_ndcg_at_10_total',
    help: 'Sum of the sampled plays\' NDCG@10 (1/log2(rank + 2) in the top 10, else 0): NDCG@10 = this / samples',
    labelNames: ['scored_version'] as const,
    registers: [this.registry],
  });
  readonly liveQualityReciprocalRank = new Counter({
    name: 'taste_live_quality_reciprocal_rank_total',
    help: 'Sum of the sampled plays\' reciprocal ranks 1/(rank + 1): MRR = this / samples',
    labelNames: ['scored_version'] as const,
    registers: [this.registry],
  });
  readonly liveQualityRecordFailures = new Counter({
    name: 'taste_live_quality_record_failures_total',
    help: 'Steps whose live quality totals could not be added to Redis (lost; the stream went on)',
    labelNames: ['scored_version'] as const,
    registers: [this.registry],
  });

  readonly #defaultMetrics: boolean;
  #collectingDefaults = false;

  /**
   * A process that runs one model (a consumer): every metric it exports carries that
   * `model_version`, so a shadow model's consumer is told apart from the live one's on any panel.
   */
  runsModel(modelVersion: string, modelKind: string): void {
    this.registry.setDefaultLabels({ model_version: modelVersion });
    this.modelInfo.set({ model_version: modelVersion, model_kind: modelKind }, 1);
  }

  /** A shadow model this consumer runs beside its primary (docs/rollout.md). */
  runsShadow(modelVersion: string, modelKind: string): void {
    this.modelInfo.set({ model_version: modelVersion, model_kind: modelKind }, 1);
    this.shadowRunning.set({ shadow_version: modelVersion }, 1);
  }

  /** A process that serves several versions (a server): its calls carry the version they asked for. */
  servesModel(modelVersion: string, modelKind: string): void {
    this.modelInfo.set({ model_version: modelVersion, model_kind: modelKind }, 1);
  }

  /** `defaultMetrics: false`: never the process metrics, e.g. for a test that wants a quiet registry. */
  constructor(options: { defaultMetrics?: boolean } = {}) {
    this.#defaultMetrics = options.defaultMetrics ?? true;
  }

  /**
   * Starts prom-client's process metrics (CPU, RSS, event-loop lag, GC), unless turned off.
   * startMetricsServer calls it: they are not started before, because with no /metrics nobody can
   * read them, and they cost CPU while the process is idle (the event-loop-lag histogram samples
   * every 10 ms: 13.5 ms of CPU per second in an idle `taste serve --metrics-port 0`, issue 18).
   * Idempotent.
   */
  startDefaultMetrics(): void {
    if (!this.#defaultMetrics || this.#collectingDefaults) return;
    this.#collectingDefaults = true;
    collectDefaultMetrics({ register: this.registry, prefix: 'taste_' });
  }
}
