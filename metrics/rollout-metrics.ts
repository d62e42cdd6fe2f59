import { Counter, Gauge, type Registry } from 'prom-client';
import type { DefaultVersionObserver } from '../serving/default-version-watcher.js';

/**
 * A serving replica's view of the rollout (docs/rollout.md), in the registry of its
 * PipelineMetrics. taste_model_info says which versions a replica serves, not which one answers
 * an empty model_version; that is what a dashboard needs during a switch ("how many replicas
 * serve v2 as the default"), hence a gauge of its own.
 */
export class RolloutMetrics {
  readonly defaultVersion: Gauge<'model_version'>;
  readonly refusedSwitches: Counter;
  readonly pollFailures: Counter;

  constructor(registry: Registry, servedVersions: readonly string[]) {
    this.defaultVersion = new Gauge({
      name: 'taste_serving_default_model_version',
      help: 'The model version this replica answers an empty model_version with: 1 for it, 0 for the other versions served',
      labelNames: ['model_version'] as const,
      registers: [registry],
    });
    this.refusedSwitches = new Counter({
      name: 'taste_rollout_switches_refused_total',
      help: 'Rollout records naming a version this replica does not serve (the old default stays), once per such version',
      registers: [registry],
    });
    this.pollFailures = new Counter({
      name: 'taste_rollout_poll_failures_total',
      help: 'Polls of the rollout record that failed (Redis down); the current default stays',
      registers: [registry],
    });
    for (const version of servedVersions) this.defaultVersion.set({ model_version: version }, 0);
  }
}

/** The watcher's reports as RolloutMetrics. */
export function rolloutObserver(metrics: RolloutMetrics, servedVersions: readonly string[]): DefaultVersionObserver {
  return {
    onDefault: (version) => {
      for (const served of servedVersions) metrics.defaultVersion.set({ model_version: served }, served === version ? 1 : 0);
    },
    onRefused: () => metrics.refusedSwitches.inc(),
    onPollFailed: () => metrics.pollFailures.inc(),
  };
}
