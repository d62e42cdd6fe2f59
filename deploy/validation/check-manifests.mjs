// What a schema cannot see in rendered manifests: KEDA objects (validated with the
// @kubernetes-models/keda validators, npm) and the rules that tie the manifests to the CLI and
// to each other (a PodMonitor to the pods it scrapes, an alert to its runbook). Run by scripts/validate-manifests.sh from its npm tools folder (for `yaml` and
// the KEDA models), never from the project's node_modules.
//
// usage: node check-manifests.mjs [--help-dir DIR] RENDERED.yaml...
//   DIR holds `<command>.txt` = `taste <command> --help`; env names are checked against them.
import { readFileSync, existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ScaledObject, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';

// The CLI gives up on a clean stop after this long (cli/options.ts ShutdownSignal graceMs).
const CLI_SHUTDOWN_GRACE_S = 25;
// Kafka scaler metadata keys (KEDA 2.12+ docs). The KEDA validators ignore unknown keys, and so
// does KEDA: a misspelt `lagThreshold` would silently scale on the default.
const KAFKA_SCALER_KEYS = new Set([
  'bootstrapServers', 'consumerGroup', 'topic', 'lagThreshold', 'activationLagThreshold', 'offsetResetPolicy',
  'allowIdleConsumers', 'excludePersistentLag', 'scaleToZeroOnInvalidOffset', 'limitToPartitionsWithLag',
  'ensureEvenDistributionOfPartitions', 'partitionLimitation', 'version', 'sasl', 'tls', 'unsafeSsl',
  'saslTokenProvider', 'awsRegion', 'awsEndpoint',
]);

const args = process.argv.slice(2);
let helpDir;
if (args[0] === '--help-dir') {
  helpDir = args[1];
  args.splice(0, 2);
}

const problems = [];
const notes = new Set();
const fail = (where, message) => problems.push(`${where}: ${message}`);

function helpOf(command) {
  const file = helpDir && join(helpDir, `${command}.txt`);
  return file && existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

/** Env names a command accepts, from its --help text; undefined when there is no such text. */
function envNamesOf(command) {
  const help = helpOf(command);
  return help === undefined ? undefined : new Set(help.match(/\bTASTE_[A-Z0-9_]+/g) ?? []);
}

/** Flags a command accepts (`--x`, and `--x` / `--no-x` for `--[no-]x`). */
function flagsOf(command) {
  const help = helpOf(command);
  if (help === undefined) return undefined;
  const flags = new Set();
  for (const [, no, name] of help.matchAll(/^\s+(?:-\w, )?--(\[no-\])?([a-z0-9-]+)/gm)) {
    flags.add(name);
    if (no) flags.add(`no-${name}`);
  }
  return flags;
}

function cpuOf(quantity) {
  if (quantity === undefined) return undefined;
  const text = String(quantity);
  return text.endsWith('m') ? Number(text.slice(0, -1)) / 1000 : Number(text);
}

const matches = (selector, labels) => Object.entries(selector ?? {}).every(([k, v]) => labels?.[k] === v);

const all = [];
for (const file of args) {
  for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
    if (doc.errors.length > 0) fail(file, `YAML: ${doc.errors[0].message}`);
    const object = doc.toJS();
    if (object) all.push({ file: basename(file), object });
  }
}

// Across files: topics are rendered apart from the workloads. Invalid counts are the schema's job.
const topicPartitions = all
  .filter(({ object }) => object.kind === 'KafkaTopic')
  .map(({ object }) => object.spec?.partitions)
  .filter((count) => Number.isInteger(count) && count >= 1);
for (const { file, object } of all) {
  const where = `${file} ${object.kind}/${object.metadata?.name}`;
  const inFile = all.filter((other) => other.file === file).map((other) => other.object);
  const configMaps = new Map(inFile.filter((o) => o.kind === 'ConfigMap').map((o) => [o.metadata.name, o.data ?? {}]));
  const partitions = Math.min(
    ...topicPartitions,
    ...[...configMaps.values()].map((data) => Number(data.TASTE_TOPIC_PARTITIONS)).filter(Number.isFinite),
  );

  if (object.kind === 'ScaledObject' || object.kind === 'TriggerAuthentication') {
    const Model = object.kind === 'ScaledObject' ? ScaledObject : TriggerAuthentication;
    try {
      new Model(object).validate();
    } catch (error) {
      fail(where, `KEDA schema: ${error.message}`);
    }
  }
  if (object.kind === 'ScaledObject') {
    for (const [index, trigger] of (object.spec.triggers ?? []).entries()) {
      if (trigger.type !== 'kafka') continue;
      for (const key of Object.keys(trigger.metadata ?? {})) {
        if (!KAFKA_SCALER_KEYS.has(key)) fail(where, `triggers[${index}].metadata.${key} is not a Kafka scaler setting`);
      }
    }
    if (object.spec.maxReplicaCount > partitions) fail(where, `maxReplicaCount ${object.spec.maxReplicaCount} > ${partitions} partitions: the extra consumers would idle`);
  }

  if (object.kind === 'HorizontalPodAutoscaler' || object.kind === 'ScaledObject') {
    const target = object.spec.scaleTargetRef?.name;
    if (!inFile.some((o) => o.kind === 'Deployment' && o.metadata.name === target)) fail(where, `scales ${target}, which is not in this render`);
    if (object.kind === 'HorizontalPodAutoscaler' && target === 'taste-consumer' && object.spec.maxReplicas > partitions) {
      fail(where, `maxReplicas ${object.spec.maxReplicas} > ${partitions} partitions`);
    }
  }

  if (object.kind === 'Service' || object.kind === 'PodDisruptionBudget') {
    const selector = object.kind === 'Service' ? object.spec.selector : object.spec.selector?.matchLabels;
    const pods = inFile.filter((o) => o.kind === 'Deployment' && matches(selector, o.spec.template.metadata.labels));
    if (pods.length === 0) fail(where, 'selects no pods of this render');
    for (const port of object.kind === 'Service' ? object.spec.ports : []) {
      const named = pods.some((d) => d.spec.template.spec.containers.some((c) => (c.ports ?? []).some((p) => p.name === port.targetPort || p.containerPort === port.targetPort)));
      if (pods.length > 0 && !named) fail(where, `targetPort ${port.targetPort} is no container port of the selected pods`);
    }
  }

  // A PodMonitor that matches nothing, or names a port the pods lack, scrapes nothing, silently.
  if (object.kind === 'PodMonitor') {
    const selector = object.spec.selector ?? {};
    const selects = (labels) =>
      matches(selector.matchLabels, labels) &&
      (selector.matchExpressions ?? []).every(({ key, operator, values = [] }) =>
        operator === 'In' ? values.includes(labels?.[key]) : operator === 'NotIn' ? !values.includes(labels?.[key]) : operator === 'Exists' ? key in (labels ?? {}) : !(key in (labels ?? {})),
      );
    const pods = inFile.filter((o) => o.kind === 'Deployment' && selects(o.spec.template.metadata.labels));
    if (pods.length === 0) fail(where, 'selects no pods of this render');
    for (const endpoint of object.spec.podMetricsEndpoints ?? []) {
      for (const pod of pods) {
        const ports = pod.spec.template.spec.containers.flatMap((c) => c.ports ?? []);
        if (endpoint.port && !ports.some((p) => p.name === endpoint.port)) fail(where, `port ${endpoint.port} is no named container port of ${pod.metadata.name}`);
      }
    }
    if (object.spec.jobLabel && pods.some((pod) => !(object.spec.jobLabel in (pod.spec.template.metadata.labels ?? {})))) {
      fail(where, `jobLabel ${object.spec.jobLabel} is not a label of every selected pod`);
    }
  }
  // Every alert says how bad it is and where its runbook section is.
  if (object.kind === 'PrometheusRule') {
    for (const group of object.spec.groups ?? []) {
      for (const rule of group.rules ?? []) {
        if (!rule.alert) continue;
        if (!rule.labels?.severity) fail(where, `alert ${rule.alert} has no severity label`);
        if (!rule.annotations?.runbook_url) fail(where, `alert ${rule.alert} has no runbook_url annotation`);
      }
    }
  }

  if (object.kind !== 'Deployment' && object.kind !== 'Job') continue;
  const pod = object.spec.template.spec;
  for (const container of pod.containers) {
    const command = container.args?.[0];
    if (!container.image?.includes('taste') || !command) continue;
    const cw = `${where} container ${container.name} (taste ${command})`;
    const grace = pod.terminationGracePeriodSeconds ?? 30;
    if (grace < 30 || grace <= CLI_SHUTDOWN_GRACE_S) fail(cw, `terminationGracePeriodSeconds ${grace}: must be >= 30 and above the CLI's ${CLI_SHUTDOWN_GRACE_S} s shutdown grace`);
    if (command === 'consume' && object.spec.replicas > partitions) fail(cw, `replicas ${object.spec.replicas} > ${partitions} partitions`);

    const env = new Map((container.env ?? []).map((e) => [e.name, e]));
    const fromMaps = (container.envFrom ?? []).flatMap((source) => {
      const name = source.configMapRef?.name;
      if (name && !configMaps.has(name)) notes.add(`${file}: ConfigMap ${name} is not in this render (applied beside it)`);
      return Object.keys(configMaps.get(name) ?? {});
    });
    const flags = flagsOf(command);
    for (const arg of (container.args ?? []).slice(1)) {
      const flag = /^--([a-z0-9-]+)/.exec(arg)?.[1];
      if (flag && flags && !flags.has(flag)) fail(cw, `argument --${flag} is not an option of taste ${command}`);
    }
    const known = envNamesOf(command);
    if (known === undefined) {
      notes.add(`${cw}: env names not checked, no \`taste ${command} --help\` (command missing or dist/ not built)`);
    } else {
      for (const name of env.keys()) if (name.startsWith('TASTE_') && !known.has(name)) fail(cw, `env ${name} is not an option of taste ${command}`);
    }
    // A ConfigMap key must mean something to at least one command that reads the map.
    for (const name of fromMaps) {
      const users = all.flatMap(({ object: o }) => (o.spec?.template?.spec?.containers ?? []).map((c) => c.args?.[0])).filter(Boolean);
      const helps = [...new Set(users)].map(envNamesOf).filter(Boolean);
      if (helps.length > 0 && !helps.some((names) => names.has(name))) fail(`${file} ConfigMap`, `${name} is an option of no taste command`);
    }

    const value = (name) => env.get(name)?.value ?? [...configMaps.values()].find((data) => name in data)?.[name];
    const threads = Number(value('TASTE_INTRA_OP_THREADS') ?? 0) * Number(value('TASTE_INFERENCE_WORKERS') ?? 1);
    const cpuLimit = cpuOf(container.resources?.limits?.cpu);
    if (['consume', 'backfill'].includes(command)) {
      if (!(threads > 0)) fail(cw, 'TASTE_INTRA_OP_THREADS unset: onnxruntime would size its pool to the node, not the pod');
      else if (cpuLimit !== undefined && threads > cpuLimit) fail(cw, `${threads} inference threads > CPU limit ${cpuLimit}`);
    }
    if (!container.resources?.requests || !container.resources?.limits) fail(cw, 'resources need requests and limits');
    if (command === 'backfill' && object.kind === 'Job') checkShardedBackfill(cw, object, container, value);
    if (command === 'backfill') checkGroupedBackfill(cw, pod, container, value);

    const tls = env.has('TASTE_TLS_CERT');
    for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
      const p = container[probe];
      if (p?.grpc && tls) fail(cw, `${probe} is a native gRPC probe, which speaks plaintext, but the server uses TLS`);
      if (p?.grpc && !(container.ports ?? []).some((port) => port.containerPort === p.grpc.port)) fail(cw, `${probe} probes port ${p.grpc.port}, not a container port`);
    }
    const secretVolumes = (pod.volumes ?? []).filter((v) => v.secret);
    if (secretVolumes.length > 0 && pod.securityContext?.runAsUser && !pod.securityContext?.fsGroup) {
      fail(cw, 'Secret volumes without fsGroup: the non-root user may not read them');
    }
  }
}

/** A Kubernetes memory quantity in bytes (`4Gi`, `512M`, `3e9`). */
function bytesOfQuantity(quantity) {
  if (quantity === undefined) return undefined;
  const match = /^([0-9.e+]+)([KMGTPE]i?)?$/.exec(String(quantity));
  if (!match) return undefined;
  const [, number, unit] = match;
  const power = unit ? 'KMGTPE'.indexOf(unit[0]) + 1 : 0;
  return Number(number) * (unit?.endsWith('i') ? 1024 : 1000) ** power;
}

/** A DuckDB size setting in bytes (`1GB` = 10^9, `1GiB` = 2^30, as DuckDB reads them). */
function bytesOfDuckdbSize(size) {
  const match = /^\s*([0-9.]+)\s*([KMGT]?)(i?)B?\s*$/i.exec(String(size));
  if (!match) return undefined;
  const [, number, unit, binary] = match;
  return Number(number) * (binary ? 1024 : 1000) ** (unit ? 'KMGT'.indexOf(unit.toUpperCase()) + 1 : 0);
}

/** The value of `--flag V` or `--flag=V` in a container's args. */
function flagOf(args, flag) {
  for (const [index, arg] of args.entries()) {
    if (arg === `--${flag}`) return args[index + 1];
    if (arg.startsWith(`--${flag}=`)) return arg.slice(flag.length + 3);
  }
  return undefined;
}

/**
 * `--group-by-user` (docs/backfill.md "One pass per user") keeps the featurized input in DuckDB:
 * in memory up to --group-memory, beyond it in a database file and spill under --group-temp-dir.
 * Three ways for that to fail on the cluster, not before: the folder on a read-only root filesystem
 * or a read-only mount (every pod fails at the start, when it makes its folder there), and two that
 * strike only once the input outgrows memory, hours in: a scratch emptyDir smaller than DuckDB's
 * memory limit (the kubelet evicts the pod when it fills), or a memory limit below the Node heap
 * plus DuckDB's limit (the kernel kills the pod before DuckDB spills).
 */
function checkGroupedBackfill(where, pod, container, value) {
  const args = container.args ?? [];
  if (!args.includes('--group-by-user') && !/^(true|1)$/.test(value('TASTE_BACKFILL_GROUP_BY_USER') ?? '')) return;
  const groupMemory = flagOf(args, 'group-memory') ?? value('TASTE_BACKFILL_GROUP_MEMORY') ?? '1GB';
  const duckdbBytes = bytesOfDuckdbSize(groupMemory);
  if (duckdbBytes === undefined) {
    fail(where, `--group-memory ${groupMemory} is not a size DuckDB reads (e.g. 1GB, 512MiB)`);
    return;
  }
  const dir = flagOf(args, 'group-temp-dir') ?? value('TASTE_BACKFILL_GROUP_TEMP_DIR') ?? value('TMPDIR') ?? '/tmp';
  const mount = (container.volumeMounts ?? [])
    .filter((m) => dir === m.mountPath.replace(/\/$/, '') || dir.startsWith(`${m.mountPath.replace(/\/$/, '')}/`))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  if (!mount) {
    if (container.securityContext?.readOnlyRootFilesystem) {
      fail(where, `--group-by-user keeps DuckDB's table under ${dir}, on the read-only root filesystem: mount a volume there or give --group-temp-dir on one`);
    }
  } else if (mount.readOnly) {
    fail(where, `--group-by-user keeps DuckDB's table under ${dir}, but volume ${mount.name} is mounted read-only`);
  } else {
    const sizeLimit = pod.volumes?.find((v) => v.name === mount.name)?.emptyDir?.sizeLimit;
    if (sizeLimit !== undefined && bytesOfQuantity(sizeLimit) < duckdbBytes) {
      fail(where, `--group-temp-dir ${dir} is an emptyDir of ${sizeLimit}, less than --group-memory ${groupMemory}: DuckDB writes the table there beyond its memory, and the kubelet evicts the pod when the folder is full`);
    }
  }
  const limit = bytesOfQuantity(container.resources?.limits?.memory);
  const heapMiB = Number(/--max-old-space-size=(\d+)/.exec(value('NODE_OPTIONS') ?? '')?.[1] ?? NaN);
  if (limit === undefined || Number.isNaN(heapMiB)) {
    notes.add(`${where}: memory for --group-by-user not checked (no memory limit, or no --max-old-space-size in NODE_OPTIONS)`);
    return;
  }
  const needed = heapMiB * 2 ** 20 + duckdbBytes + 256 * 2 ** 20;
  if (limit < needed) {
    fail(where, `memory limit ${container.resources.limits.memory} < the heap (--max-old-space-size=${heapMiB}) + --group-memory ${groupMemory} + 256Mi for onnxruntime and buffers: the kernel kills the pod before DuckDB spills`);
  }
}

/**
 * A sharded backfill (docs/backfill.md) is an Indexed Job whose pod I runs shard I/N: N must be
 * its completions (fewer shards: the pods above N fail; more: shards nobody runs), no pod may be
 * pinned to one --shard, and shards whose checkpoints share a volume need a file each.
 */
function checkShardedBackfill(where, job, container, value) {
  const args = container.args ?? [];
  const flagValue = (flag) => flagOf(args, flag);
  const shards = flagValue('shards') ?? value('TASTE_BACKFILL_SHARDS');
  if (job.spec.completionMode !== 'Indexed') {
    if (shards !== undefined) fail(where, '--shards / TASTE_BACKFILL_SHARDS without completionMode: Indexed: no pod has a JOB_COMPLETION_INDEX');
    return;
  }
  const pinned = flagValue('shard') ?? value('TASTE_BACKFILL_SHARD');
  if (pinned !== undefined) fail(where, `--shard ${pinned} in an Indexed Job: every pod would run that one shard; give --shards N and each pod takes its index`);
  const completions = job.spec.completions ?? 1;
  if (shards === undefined) {
    if (completions > 1) fail(where, `an Indexed Job of ${completions} completions without --shards / TASTE_BACKFILL_SHARDS: every pod would backfill everything`);
    return;
  }
  if (Number(shards) !== completions) fail(where, `${shards} shards but ${completions} completions: each index must run one shard, and every shard have an index`);
  const checkpoint = flagValue('checkpoint') ?? value('TASTE_BACKFILL_CHECKPOINT');
  if (!checkpoint || completions === 1 || checkpoint.includes('$(JOB_COMPLETION_INDEX)')) return;
  const mount = (container.volumeMounts ?? [])
    .filter((m) => checkpoint.startsWith(`${m.mountPath.replace(/\/$/, '')}/`))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  const claim = job.spec.template.spec.volumes?.find((v) => v.name === mount?.name)?.persistentVolumeClaim?.claimName;
  if (claim) fail(where, `the shards share one checkpoint file ${checkpoint} on PVC ${claim}: put $(JOB_COMPLETION_INDEX) in its name`);
}

for (const note of notes) console.log(`[validate] note: ${note}`);
for (const problem of problems) console.error(`[validate] INVALID ${problem}`);
console.log(`[validate] cross-checks: ${all.length} objects, ${problems.length} problems`);
process.exit(problems.length === 0 ? 0 : 1);
