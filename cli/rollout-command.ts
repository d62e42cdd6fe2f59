import { hostname } from 'node:os';
import { ErrorCodes, TasteError } from '../common/errors.js';
import { pollUntil } from '../common/poll.js';
import type { RedisClient } from '../featurestore/feature-store.js';
import { qualityRates, readQualityTotals } from '../featurestore/live-quality.js';
import { createRedisClient, waitForRedis } from '../featurestore/redis-client.js';
import {
  pruneReplicas,
  readReplicas,
  readRolloutRecord,
  ROLLOUT_VERSION_PATTERN,
  SetDefaultOutcomes,
  setDefaultVersion,
  type ReplicaEntry,
  type RolloutRecord,
} from '../featurestore/rollout-state.js';
import { defaultVersionSampleOptions, sampleVersions, summarizeVersion, type VersionSample, type VersionSummary } from '../featurestore/version-sample.js';
import { redisFlags } from './common-flags.js';
import { formatHelp, parseFlags, UsageError, type FlagSpecs } from './flags.js';
import { parseDuration, redisOptions } from './options.js';

// `taste rollout`: switch the default model version of every `taste serve` at runtime, guarded by
// coverage, and show the versions side by side (docs/rollout.md).

const sampleFlags = {
  'active-within': { type: 'string', env: 'TASTE_ROLLOUT_ACTIVE_WITHIN', default: '24h', description: 'a user counts as recently active when their newest event is this recent (90s, 15m, 24h, 7d)' },
  'sample-size': { type: 'integer', env: 'TASTE_ROLLOUT_SAMPLE_SIZE', default: defaultVersionSampleOptions.maxKeys, min: 1, description: 'most keys of the current default read for the sample (split across the masters)' },
  from: { type: 'string', env: 'TASTE_ROLLOUT_FROM', description: 'the version whose users are sampled (default: the current default)' },
} as const satisfies FlagSpecs;

const setDefaultFlags = {
  ...redisFlags,
  ...sampleFlags,
  'min-coverage': { type: 'number', env: 'TASTE_ROLLOUT_MIN_COVERAGE', default: 0.95, min: 0, max: 1, description: 'refuse the switch when fewer of the recently active users have an embedding in VERSION' },
  // No environment variable on purpose: a forced switch must be asked for each time, never left set in a shell.
  force: { type: 'boolean', default: false, description: 'switch even below --min-coverage (an emergency rollback)' },
  'set-by': { type: 'string', env: 'TASTE_ROLLOUT_SET_BY', description: 'who switches, for the record (default: $USER@<hostname>)' },
  wait: { type: 'boolean', env: 'TASTE_ROLLOUT_WAIT', default: true, description: 'wait until every live serving replica answers with VERSION by default' },
  'wait-timeout-ms': { type: 'integer', env: 'TASTE_ROLLOUT_WAIT_TIMEOUT_MS', default: 60_000, min: 1, description: 'longest the wait may take' },
} as const satisfies FlagSpecs;

const statusFlags = {
  ...redisFlags,
  ...sampleFlags,
  versions: { type: 'string', env: 'TASTE_ROLLOUT_VERSIONS', default: '', description: 'more versions to show, comma-separated (besides the default, the previous one and what live replicas serve)' },
  'quality-hours': { type: 'integer', env: 'TASTE_ROLLOUT_QUALITY_HOURS', default: 24, min: 1, max: 192, description: 'live quality over this many recent hours' },
  json: { type: 'boolean', env: 'TASTE_ROLLOUT_JSON', default: false, description: 'print JSON (for scripts) instead of a table' },
} as const satisfies FlagSpecs;

/** Replicas not seen for this long are dropped from the registry (killed without a clean stop). */
const PRUNE_AFTER_MS = 3_600_000;

export const rolloutHelp = [
  'Usage: taste rollout <subcommand> [options]',
  '',
  'Switches the model version that every `taste serve` answers when a request leaves model_version empty,',
  'at runtime (each replica reads it every --rollout-poll-ms), and shows the versions side by side.',
  'Rollback is set-default with the old version. See docs/rollout.md.',
  '',
  'Subcommands:',
  '  set-default VERSION   check coverage, then make VERSION the default (taste rollout set-default --help)',
  '  status                coverage, freshness and live quality of every version (taste rollout status --help)',
].join('\n');

export const setDefaultHelp = formatHelp(
  'taste rollout set-default VERSION [options]',
  [
    'Makes VERSION the default model version of every `taste serve` replica on this Redis and key prefix.',
    'First it checks that every live replica serves VERSION, and the coverage: the share of users of the',
    'current default, active within --active-within, that have an embedding in VERSION (a sample of up to',
    '--sample-size keys, printed with its standard error). Below --min-coverage it refuses unless --force.',
    'Then it waits until every live replica has switched (--no-wait: return at once).',
  ].join('\n'),
  setDefaultFlags,
);

export const statusHelp = formatHelp(
  'taste rollout status [options]',
  [
    'The rollout record (default, previous, who and when), the serving replicas, and per version: coverage',
    'among recently active users of the default, freshness (embedding age p50/p95, event-to-write lag p50)',
    'and live quality (HR@10, NDCG@10, MRR over --quality-hours, with the sample count).',
  ].join('\n'),
  statusFlags,
);

export async function runRolloutCommand(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [subcommand, ...rest] = argv;
  if (subcommand === undefined || subcommand === '--help' || subcommand === '-h' || subcommand === 'help') {
    console.log(rolloutHelp);
    return subcommand === undefined ? 2 : 0;
  }
  if (subcommand === 'set-default') return runSetDefault(rest, env);
  if (subcommand === 'status') return runStatus(rest, env);
  throw new UsageError(`unknown subcommand "${subcommand}": use set-default or status`);
}

async function runSetDefault(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, help, positionals } = parseFlags(setDefaultFlags, argv, env, { positionals: true });
  if (help) {
    console.log(setDefaultHelp);
    return 0;
  }
  const version = versionArgument(positionals);
  const activeWithinMs = parseDuration(values['active-within'], '--active-within');
  const from = values.from === undefined ? undefined : checkedVersion(values.from, '--from');
  const setBy = values['set-by'] ?? `${env.USER ?? 'unknown'}@${hostname()}`;
  const prefix = values['key-prefix'];

  return withRedis(values, 'taste-rollout', async (redis) => {
    const nowMs = Date.now();
    const record = await readRolloutRecord(redis, prefix);
    const live = (await readReplicas(redis, prefix, nowMs)).filter((replica) => replica.live);
    const current = record?.version ?? agreedDefault(live);
    if (current === version) {
      console.log(`unchanged  ${version} is the default already`);
      return 0;
    }
    // A replica refuses a version it does not serve and keeps its old default: the fleet would split.
    const lacking = live.filter((replica) => !replica.versions.includes(version));
    if (lacking.length > 0) {
      throw refused(
        `${lacking.length} of ${live.length} live serving replicas do not serve "${version}" (${lacking.map((r) => `${r.id}: ${r.versions.join(', ')}`).join('; ')}): ` +
          'deploy them with it (--model, --model-versions or --item-model) first, or check the version for a typo',
      );
    }
    if (live.length === 0) console.error(`taste rollout: warning: no live serving replica is registered under key prefix "${prefix}": nobody has confirmed serving "${version}"`);

    const base = from ?? current;
    if (base === undefined) {
      throw refused('no current default is known (no rollout record, no live replica): name the version whose users to sample with --from');
    }
    const sample = await sampleVersions(redis, prefix, { baseVersion: base, versions: [version], activeWithinMs, nowMs, maxKeys: values['sample-size'] });
    const summary = summarizeVersion(sample, version);
    console.log(`coverage   ${describeCoverage(summary, sample, values['active-within'])}`);
    const minCoverage = values['min-coverage'];
    if (summary.coverage === undefined || summary.coverage < minCoverage) {
      const why =
        summary.coverage === undefined
          ? `no user of "${base}" was active within ${values['active-within']}: coverage cannot be measured (widen --active-within)`
          : `coverage ${percent(summary.coverage)} is below --min-coverage ${percent(minCoverage)}: backfill "${version}" further`;
      if (!values.force) throw refused(`${why}; --force switches anyway`);
      console.log(`forced     ${why}`);
    }

    const result = await setDefaultVersion(redis, prefix, {
      version,
      expectedCurrent: record?.version,
      ...(current === undefined ? {} : { servedBefore: current }),
      setBy,
      nowMs: Date.now(),
      ...(summary.coverage === undefined ? {} : { coverage: summary.coverage }),
      forced: values.force,
    });
    if (result.outcome === SetDefaultOutcomes.CONFLICT) {
      throw new TasteError(ErrorCodes.ROLLOUT_REFUSED, `the default changed to "${result.current ?? ''}" while coverage was measured: run the command again`, { canRetry: true });
    }
    if (result.outcome === SetDefaultOutcomes.UNCHANGED) {
      console.log(`unchanged  ${version} is the default already`);
      return 0;
    }
    console.log(`default    ${version} (was ${current ?? 'none'}), set by ${setBy}`);
    await pruneReplicas(redis, prefix, Date.now(), PRUNE_AFTER_MS);
    if (values.wait && live.length > 0) await waitForReplicas(redis, prefix, version, values['wait-timeout-ms']);
    return 0;
  });
}

/** Until every live replica answers `version` by default (replicas that started meanwhile count too). */
async function waitForReplicas(redis: RedisClient, prefix: string, version: string, timeoutMs: number): Promise<void> {
  const started = performance.now();
  let behind: ReplicaEntry[] = [];
  let live: ReplicaEntry[] = [];
  await pollUntil(
    async () => {
      live = (await readReplicas(redis, prefix, Date.now())).filter((replica) => replica.live);
      behind = live.filter((replica) => replica.defaultVersion !== version);
      return behind.length === 0 ? true : undefined;
    },
    {
      what: () => `every serving replica to switch to "${version}" (the default is set; still on another: ${behind.map((r) => `${r.id} (${r.defaultVersion})`).join(', ')})`,
      timeoutMs,
      intervalMs: 100,
    },
  );
  console.log(`switched   ${live.length} of ${live.length} live replicas serve ${version} by default, ${((performance.now() - started) / 1000).toFixed(1)} s after the switch`);
}

interface StatusReport {
  prefix: string;
  defaultVersion: string | undefined;
  record: RolloutRecord | undefined;
  replicas: ReplicaEntry[];
  sample: { baseVersion: string; scannedKeys: number; active: number; complete: boolean; activeWithin: string } | undefined;
  qualityHours: number;
  versions: VersionStatus[];
}

interface VersionStatus extends Omit<VersionSummary, 'version'> {
  version: string;
  isDefault: boolean;
  isPrevious: boolean;
  /** Live replicas that serve it, and of them those answering it by default. */
  replicasServing: number;
  replicasDefault: number;
  quality: { samples: number; hitRate10: number | undefined; ndcg10: number | undefined; mrr: number | undefined };
}

async function runStatus(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, help } = parseFlags(statusFlags, argv, env);
  if (help) {
    console.log(statusHelp);
    return 0;
  }
  const activeWithinMs = parseDuration(values['active-within'], '--active-within');
  const from = values.from === undefined ? undefined : checkedVersion(values.from, '--from');
  const extra = values.versions.split(',').map((v) => v.trim()).filter(Boolean).map((v) => checkedVersion(v, '--versions'));
  const prefix = values['key-prefix'];

  return withRedis(values, 'taste-rollout', async (redis) => {
    const nowMs = Date.now();
    const record = await readRolloutRecord(redis, prefix);
    const replicas = await readReplicas(redis, prefix, nowMs);
    const live = replicas.filter((replica) => replica.live);
    const defaultVersion = record?.version ?? agreedDefault(live);
    const versions = [
      ...new Set([
        ...(defaultVersion ? [defaultVersion] : []),
        ...(record?.previous ? [record.previous] : []),
        ...live.flatMap((replica) => replica.versions),
        ...extra,
      ]),
    ];
    if (versions.length === 0) {
      throw new UsageError(`no model version is known under key prefix "${prefix}" (no rollout record, no live serving replica): name them with --versions a,b`);
    }
    const base = from ?? defaultVersion ?? versions[0]!;
    const [sample, quality] = await Promise.all([
      sampleVersions(redis, prefix, { baseVersion: base, versions, activeWithinMs, nowMs, maxKeys: values['sample-size'] }),
      readQualityTotals(redis, prefix, versions, nowMs, values['quality-hours']),
    ]);
    const report: StatusReport = {
      prefix,
      defaultVersion,
      record,
      replicas,
      sample: { baseVersion: base, scannedKeys: sample.scannedKeys, active: sample.active, complete: sample.complete, activeWithin: values['active-within'] },
      qualityHours: values['quality-hours'],
      versions: versions.map((version) => {
        const totals = quality.get(version) ?? { samples: 0, hits10: 0, ndcg10Sum: 0, reciprocalRankSum: 0 };
        const rates = qualityRates(totals);
        return {
          ...summarizeVersion(sample, version),
          isDefault: version === defaultVersion,
          isPrevious: version === record?.previous,
          replicasServing: live.filter((replica) => replica.versions.includes(version)).length,
          replicasDefault: live.filter((replica) => replica.defaultVersion === version).length,
          quality: { samples: totals.samples, hitRate10: rates?.hitRate10, ndcg10: rates?.ndcg10, mrr: rates?.mrr },
        };
      }),
    };
    console.log(values.json ? JSON.stringify(report, null, 2) : formatStatus(report, sample, live.length));
    return 0;
  });
}

/** The readable form of `status`: the record, the replicas, then one row per version. */
export function formatStatus(report: StatusReport, sample: VersionSample, liveReplicas: number): string {
  const { record } = report;
  const lines = [
    record
      ? `default   ${record.version}  (previous ${record.previous ?? 'none'}; set by ${record.setBy || '?'} at ${new Date(record.setAtMs).toISOString()}` +
        `${record.coverage === undefined ? '' : `, coverage then ${percent(record.coverage)}`}${record.forced ? ', forced' : ''})`
      : `default   ${report.defaultVersion ?? 'unknown'}  (no rollout record: each replica serves its --model version)`,
    `replicas  ${liveReplicas} live${report.replicas.length > liveReplicas ? `, ${report.replicas.length - liveReplicas} stale` : ''}` +
      (report.defaultVersion ? `, ${report.versions.find((v) => v.isDefault)?.replicasDefault ?? 0} answering ${report.defaultVersion} by default` : ''),
    `sample    ${sample.active} users of ${sample.baseVersion} active within ${report.sample?.activeWithin} (${sample.scannedKeys} keys read${sample.complete ? ', all of them' : ''}); quality over ${report.qualityHours} h`,
    '',
  ];
  const header = ['version', '', 'replicas', 'coverage', 'age p50', 'age p95', 'lag p50', 'HR@10', 'NDCG@10', 'MRR', 'samples'];
  const rows = report.versions.map((v) => [
    v.version,
    v.isDefault ? 'default' : v.isPrevious ? 'previous' : '',
    `${v.replicasDefault}/${v.replicasServing}`,
    v.coverage === undefined ? '-' : `${percent(v.coverage)} ± ${percent(v.standardError ?? 0)}`,
    duration(v.ageP50Ms),
    duration(v.ageP95Ms),
    duration(v.lagP50Ms),
    rate(v.quality.hitRate10),
    rate(v.quality.ndcg10),
    rate(v.quality.mrr),
    String(v.quality.samples),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const format = (row: string[]) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd();
  lines.push(format(header), ...rows.map(format));
  lines.push('', 'replicas: answering it by default / serving it; coverage: of the sampled active users, ± one standard error; age: now - written; lag: newest event - written');
  return lines.join('\n');
}

function describeCoverage(summary: VersionSummary, sample: VersionSample, activeWithin: string): string {
  const share = summary.coverage === undefined ? 'not measurable' : `${percent(summary.coverage)} ± ${percent(summary.standardError ?? 0)}`;
  return (
    `${share}: ${summary.covered} of ${summary.active} users of ${sample.baseVersion} active within ${activeWithin} have an embedding in ${summary.version}` +
    ` (${sample.scannedKeys} keys read${sample.complete ? ', all of them' : ', a sample'})`
  );
}

/** The default all live replicas answer with, when they agree on one. */
function agreedDefault(live: readonly ReplicaEntry[]): string | undefined {
  const defaults = new Set(live.map((replica) => replica.defaultVersion));
  return defaults.size === 1 ? [...defaults][0] : undefined;
}

function versionArgument(positionals: string[]): string {
  if (positionals.length === 0) throw new UsageError('name the version to make the default: taste rollout set-default VERSION');
  if (positionals.length > 1) throw new UsageError(`one version only, got ${positionals.length}: ${positionals.join(' ')}`);
  return checkedVersion(positionals[0]!, 'VERSION');
}

function checkedVersion(version: string, what: string): string {
  if (version.trim() === '') throw new UsageError(`${what} is empty: name a model version`);
  if (!ROLLOUT_VERSION_PATTERN.test(version)) throw new UsageError(`${what} "${version.slice(0, 80)}" is not a model version (1-64 of A-Z a-z 0-9 . _ -)`);
  return version;
}

async function withRedis(values: Parameters<typeof redisOptions>[0], name: string, run: (redis: RedisClient) => Promise<number>): Promise<number> {
  // Scans may take a while on a large keyspace: a longer command timeout than the hot paths'.
  const redis = createRedisClient({ ...redisOptions(values, name), commandTimeoutMs: 10_000 });
  try {
    await waitForRedis(redis);
    return await run(redis);
  } finally {
    redis.disconnect();
  }
}

function refused(message: string): TasteError {
  return new TasteError(ErrorCodes.ROLLOUT_REFUSED, message);
}

function percent(share: number): string {
  return `${(share * 100).toFixed(1)}%`;
}

function rate(value: number | undefined): string {
  return value === undefined ? '-' : value.toFixed(3);
}

function duration(ms: number | undefined): string {
  if (ms === undefined) return '-';
  const abs = Math.abs(ms);
  if (abs < 1000) return `${Math.round(ms)} ms`;
  if (abs < 120_000) return `${(ms / 1000).toFixed(1)} s`;
  if (abs < 7_200_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}
