import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

// scripts/validate-manifests.sh guards the deployment; these cases prove it refuses what it
// should (each a mistake that kubectl apply would accept or that would fail only in the
// cluster) and accepts a correct manifest. The repository's own manifests are validated by the
// same script from scripts/test.sh.

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SCRIPT = join(ROOT, 'scripts/validate-manifests.sh');

async function validate(files: Record<string, string>): Promise<{ code: number; output: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'taste-manifests-'));
  const paths = Object.entries(files).map(([name, text]) => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  });
  try {
    const { stdout, stderr } = await promisify(execFile)('bash', [SCRIPT, '--manifest', ...paths], { cwd: ROOT, maxBuffer: 16 << 20 });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

/** A correct consumer Deployment + its ConfigMap; cases change one thing in it. */
function consumer(change: { spec?: string; pod?: string; container?: string; env?: string } = {}): string {
  return `apiVersion: v1
kind: ConfigMap
metadata: {name: taste-config}
data: {TASTE_KAFKA_BROKERS: "kafka:9092", TASTE_TOPIC_PARTITIONS: "12"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: taste-consumer}
spec:
  replicas: 3
${change.spec ?? ''}
  selector: {matchLabels: {app: c}}
  template:
    metadata: {labels: {app: c}}
    spec:
      terminationGracePeriodSeconds: 40
${change.pod ?? ''}
      containers:
        - name: consumer
          image: example.com/taste:1
          args: ["consume"]
          envFrom: [{configMapRef: {name: taste-config}}]
          env:
            - {name: TASTE_INTRA_OP_THREADS, value: "2"}
${change.env ?? ''}
          resources: {requests: {cpu: "2", memory: 1Gi}, limits: {cpu: "2", memory: 2Gi}}
${change.container ?? ''}
`.replace(/\n\n+/g, '\n');
}

/**
 * A correct sharded backfill from files grouped by user: DuckDB's table on a scratch emptyDir, the
 * memory limit holding the heap and DuckDB's limit; cases change one thing in it.
 */
function groupedBackfill(change: { groupMemory?: string; limits?: string; scratch?: string } = {}): string {
  return shardedBackfill({
    args: `"--group-by-user", "--group-memory=${change.groupMemory ?? '1GB'}", ${change.scratch === undefined ? '"--group-temp-dir=/scratch", ' : ''}"--checkpoint=/checkpoints/shard-$(JOB_COMPLETION_INDEX).ckpt", "/archive"`,
    env: '            - {name: NODE_OPTIONS, value: --max-old-space-size=2048}',
    limits: change.limits ?? '4Gi',
    container: '          securityContext: {readOnlyRootFilesystem: true}',
    mounts: change.scratch === undefined ? ', {name: scratch, mountPath: /scratch}' : change.scratch,
    volumes: ', {name: scratch, emptyDir: {sizeLimit: 8Gi}}',
  }).replace('"--kafka", ', '');
}

/** A correct sharded backfill: an Indexed Job of 4 pods, a checkpoint file per shard on a shared claim; cases change one thing in it. */
function shardedBackfill(change: { spec?: string; args?: string; shards?: string; env?: string; limits?: string; container?: string; mounts?: string; volumes?: string } = {}): string {
  return `apiVersion: batch/v1
kind: Job
metadata: {name: taste-backfill}
spec:
  completionMode: Indexed
  completions: 4
  parallelism: 4
  backoffLimitPerIndex: 3
${change.spec ?? ''}
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 40
      containers:
        - name: backfill
          image: example.com/taste:1
          args: ["backfill", "--kafka", ${change.args ?? '"--checkpoint=/checkpoints/shard-$(JOB_COMPLETION_INDEX).ckpt"'}]
          env:
            - {name: TASTE_INTRA_OP_THREADS, value: "2"}
            - {name: TASTE_BACKFILL_SHARDS, value: "${change.shards ?? '4'}"}
${change.env ?? ''}
          resources: {requests: {cpu: "2", memory: 1Gi}, limits: {cpu: "2", memory: ${change.limits ?? '2Gi'}}}
${change.container ?? ''}
          volumeMounts: [{name: checkpoints, mountPath: /checkpoints}${change.mounts ?? ''}]
      volumes: [{name: checkpoints, persistentVolumeClaim: {claimName: taste-backfill-checkpoints}}${change.volumes ?? ''}]
`.replace(/\n\n+/g, '\n');
}

const cases: [string, Record<string, string>, RegExp][] = [
  ['a misspelt field (strict Kubernetes schema)', { 'typo.yaml': consumer({ pod: '      terminationGracePeriodSecond: 30' }) }, /additional properties 'terminationGracePeriodSecond' not allowed/],
  ['a wrong type', { 'type.yaml': consumer().replace('replicas: 3', 'replicas: three') }, /replicas/],
  ['an API version the cluster no longer serves', { 'old.yaml': 'apiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\nmetadata: {name: x}\nspec: {scaleTargetRef: {kind: Deployment, name: x}, maxReplicas: 2}\n' }, /could not find schema for HorizontalPodAutoscaler/],
  ['a kind without any schema', { 'unknown.yaml': 'apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: x}\n' }, /could not find schema for Gadget/],
  ['a KafkaTopic field Strimzi does not know', { 'topic.yaml': 'apiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaTopic\nmetadata: {name: t}\nspec: {partitions: 12, replication: 3}\n' }, /additional properties 'replication' not allowed/],
  ['a KafkaTopic with zero partitions', { 'zero.yaml': 'apiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaTopic\nmetadata: {name: t}\nspec: {partitions: 0}\n' }, /partitions/],
  [
    'a KEDA ScaledObject with a wrongly typed field',
    { 'keda.yaml': `${consumer()}---\napiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: s}\nspec: {scaleTargetRef: {name: taste-consumer}, maxReplicaCount: many, triggers: [{type: kafka, metadata: {topic: t}}]}\n` },
    /KEDA schema/,
  ],
  [
    'a misspelt Kafka scaler setting',
    { 'lag.yaml': `${consumer()}---\napiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: s}\nspec: {scaleTargetRef: {name: taste-consumer}, maxReplicaCount: 12, triggers: [{type: kafka, metadata: {topic: t, lagThreshhold: "10"}}]}\n` },
    /lagThreshhold is not a Kafka scaler setting/,
  ],
  [
    'more consumer replicas allowed than partitions',
    { 'max.yaml': `${consumer()}---\napiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: s}\nspec: {scaleTargetRef: {name: taste-consumer}, maxReplicaCount: 24, triggers: [{type: kafka, metadata: {topic: t}}]}\n` },
    /maxReplicaCount 24 > 12 partitions/,
  ],
  [
    'a PrometheusRule field the Prometheus Operator does not know',
    { 'rule-typo.yaml': 'apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: r}\nspec: {groups: [{name: g, rules: [{alert: A, expresion: up == 0}]}]}\n' },
    /additional properties 'expresion' not allowed/,
  ],
  [
    'an alert without a runbook link',
    { 'runbook.yaml': 'apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {name: r}\nspec: {groups: [{name: g, rules: [{alert: A, expr: up == 0, labels: {severity: warning}}]}]}\n' },
    /alert A has no runbook_url annotation/,
  ],
  [
    'a PodMonitor on a port the pods do not have',
    { 'podmonitor.yaml': `${consumer()}---\napiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\nmetadata: {name: m}\nspec: {selector: {matchLabels: {app: c}}, podMetricsEndpoints: [{port: metrics}]}\n` },
    /port metrics is no named container port of taste-consumer/,
  ],
  ['an env name the CLI does not read', { 'env.yaml': consumer({ env: '            - {name: TASTE_KAFKA_BROKER, value: "x:9092"}' }) }, /env TASTE_KAFKA_BROKER is not an option of taste consume/],
  ['a sharded backfill whose shard count is not its completions', { 'shards.yaml': shardedBackfill({ shards: '3' }) }, /3 shards but 4 completions/],
  ['a sharded backfill whose pods all run one --shard', { 'pinned.yaml': shardedBackfill({ args: '"--shard=1/4", "--checkpoint=/checkpoints/shard-$(JOB_COMPLETION_INDEX).ckpt"' }) }, /--shard 1\/4 in an Indexed Job: every pod would run that one shard/],
  ['shards sharing one checkpoint file on a claim', { 'shared.yaml': shardedBackfill({ args: '"--checkpoint=/checkpoints/backfill.ckpt"' }) }, /the shards share one checkpoint file \/checkpoints\/backfill\.ckpt on PVC taste-backfill-checkpoints/],
  ['--shards in a Job that is not Indexed', { 'plain.yaml': shardedBackfill().replace('  completionMode: Indexed\n', '').replace('  backoffLimitPerIndex: 3\n', '') }, /without completionMode: Indexed: no pod has a JOB_COMPLETION_INDEX/],
  ['a grouped backfill whose memory limit cannot hold the heap and DuckDB', { 'grouped-memory.yaml': groupedBackfill({ limits: '3Gi' }) }, /memory limit 3Gi < the heap \(--max-old-space-size=2048\) \+ --group-memory 1GB \+ 256Mi/],
  ['a grouped backfill whose DuckDB folder is on the read-only root filesystem', { 'grouped-root.yaml': groupedBackfill({ scratch: '' }) }, /keeps DuckDB's table under \/tmp, on the read-only root filesystem/],
  ['a grouped backfill whose scratch is smaller than DuckDB\'s memory', { 'grouped-scratch.yaml': groupedBackfill({ groupMemory: '16GB', limits: '20Gi' }) }, /--group-temp-dir \/scratch is an emptyDir of 8Gi, less than --group-memory 16GB/],
  ['a grouped backfill whose DuckDB folder is mounted read-only', { 'grouped-readonly.yaml': groupedBackfill().replace('mountPath: /scratch}', 'mountPath: /scratch, readOnly: true}') }, /volume scratch is mounted read-only/],
  ['a --group-memory DuckDB cannot read', { 'grouped-size.yaml': groupedBackfill({ groupMemory: 'lots' }) }, /--group-memory lots is not a size DuckDB reads/],
  ['a flag the CLI does not have', { 'flag.yaml': consumer().replace('args: ["consume"]', 'args: ["consume", "--partitions=4"]') }, /argument --partitions is not an option of taste consume/],
  ['a grace period shorter than the CLI needs', { 'grace.yaml': consumer().replace('terminationGracePeriodSeconds: 40', 'terminationGracePeriodSeconds: 20') }, /terminationGracePeriodSeconds 20/],
  ['ONNX threads beyond the CPU limit', { 'threads.yaml': consumer().replace('value: "2"}', 'value: "8"}') }, /8 inference threads > CPU limit 2/],
  [
    'a native gRPC probe on a TLS port',
    {
      'tls.yaml': consumer({
        env: '            - {name: TASTE_TLS_CERT, value: /tls/tls.crt}',
        container: '          ports: [{name: grpc, containerPort: 50051}]\n          readinessProbe: {grpc: {port: 50051}}',
      }).replace('args: ["consume"]', 'args: ["serve"]').replace(/ +- \{name: TASTE_INTRA_OP_THREADS.*\n/, ''),
    },
    /native gRPC probe, which speaks plaintext, but the server uses TLS/,
  ],
];

// One run for all the broken files (a run costs ~1 s): each case's findings are the output
// lines that name its file.
let batch: Promise<{ code: number; output: string }> | undefined;

test.before(async (t) => {
  // The first run on a fresh machine installs the tools (go install, pip, mvn, npm: minutes).
  t.timeout(900_000);
  const { code, output } = await validate({ 'ok.yaml': consumer(), 'ok-backfill.yaml': shardedBackfill(), 'ok-grouped.yaml': groupedBackfill() });
  if (code !== 0) throw new Error(`a correct manifest was refused:\n${output}`);
  batch = validate(Object.assign({}, ...cases.map(([, files]) => files)));
});

test('accepts a correct manifest and refuses the batch of broken ones', async (t) => {
  const { code, output } = await batch!;
  t.is(code, 1, output);
});

for (const [name, files, expected] of cases) {
  test(`refuses ${name}`, async (t) => {
    const { output } = await batch!;
    const file = Object.keys(files)[0]!;
    const findings = output.split('\n').filter((line) => line.includes(`/${file} `) || line.includes(` ${file} `));
    t.regex(findings.join('\n'), expected, output);
  });
}
