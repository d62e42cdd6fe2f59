import anyTest, { type TestFn } from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { storedZip } from '../helpers/zip.js';

// scripts/install-cuda-provider.sh run as a user runs it, offline: on small hand-made wheels (the
// paths and metadata of the real onnxruntime-gpu 1.30.0 wheel, tiny contents) and a stand-in
// onnxruntime-node folder in a temporary directory. The real node_modules is never touched.

const SCRIPT = fileURLToPath(new URL('../../../scripts/install-cuda-provider.sh', import.meta.url));
const NODE_VERSION = '1.30.0';
const PROVIDERS = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'];

interface Context {
  root: string;
}
const test = anyTest as TestFn<Context>;

test.before((t) => {
  t.context = { root: mkdtempSync(join(tmpdir(), 'taste-cuda-install-')) };
});

test.after.always((t) => {
  if (t.context.root) rmSync(t.context.root, { recursive: true, force: true });
});

let made = 0;
function scratch(t: { context: Context }): string {
  const dir = join(t.context.root, String(made++));
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** A stand-in onnxruntime-node folder: its package.json and the folder libonnxruntime.so.1 lies in. */
function packageDir(dir: string, version = NODE_VERSION): string {
  const pkg = join(dir, 'onnxruntime-node');
  mkdirSync(join(pkg, 'bin/napi-v6/linux/x64'), { recursive: true });
  writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'onnxruntime-node', version }));
  return pkg;
}

/** An onnxruntime-gpu wheel: METADATA as the real one words it, each library's content its own name. */
function providerWheel(dir: string, options: { name?: string; version?: string; libraries?: string[] } = {}): string {
  const version = options.version ?? NODE_VERSION;
  const metadata = [
    'Metadata-Version: 2.4',
    `Name: ${options.name ?? 'onnxruntime-gpu'}`,
    `Version: ${version}`,
    'Requires-Dist: numpy>=1.21.6',
    'Provides-Extra: cuda',
    'Requires-Dist: nvidia-cuda-nvrtc~=13.0; extra == "cuda"',
    'Requires-Dist: nvidia-cuda-runtime~=13.0; extra == "cuda"',
    'Requires-Dist: nvidia-cufft~=12.0; extra == "cuda"',
    'Requires-Dist: nvidia-curand~=10.0; extra == "cuda"',
    'Provides-Extra: cudnn',
    'Requires-Dist: nvidia-cudnn-cu13~=9.0; extra == "cudnn"',
    '',
    'ONNX Runtime',
  ].join('\n');
  const files: Record<string, string> = { [`onnxruntime_gpu-${version}.dist-info/METADATA`]: metadata, 'onnxruntime/capi/libonnxruntime.so.1.30.0': 'core' };
  for (const library of options.libraries ?? PROVIDERS) files[`onnxruntime/capi/${library}`] = `fake ${library}`;
  const path = join(dir, `onnxruntime_gpu-${version}-cp312-cp312-manylinux_2_28_x86_64.whl`);
  writeFileSync(path, storedZip(files));
  return path;
}

/** The nvidia-* wheels its CUDA provider needs (cuBLAS too, which the metadata leaves out) and one they pull in. */
const CUDA_WHEELS: Record<string, string[]> = {
  'nvidia_cuda_nvrtc-13.0.88': ['nvidia/cu13/lib/libnvrtc.so.13'],
  'nvidia_cuda_runtime-13.0.96': ['nvidia/cu13/lib/libcudart.so.13'],
  'nvidia_cufft-12.0.0.61': ['nvidia/cu13/lib/libcufft.so.12'],
  'nvidia_curand-10.4.0.35': ['nvidia/cu13/lib/libcurand.so.10'],
  'nvidia_cudnn_cu13-9.13.0.50': ['nvidia/cudnn/lib/libcudnn.so.9', 'nvidia/cudnn/lib/libcudnn_ops.so.9'],
  'nvidia_cublas-13.1.0.3': ['nvidia/cu13/lib/libcublas.so.13', 'nvidia/cu13/lib/libcublasLt.so.13'],
  'nvidia_nvjitlink-13.0.88': ['nvidia/cu13/lib/libnvJitLink.so.13'],
};

function cudaWheels(dir: string, leaveOut: string[] = []): string {
  const wheels = join(dir, 'cuda-wheels');
  mkdirSync(wheels);
  for (const [wheel, libraries] of Object.entries(CUDA_WHEELS)) {
    if (leaveOut.some((name) => wheel.startsWith(name))) continue;
    const files: Record<string, string> = { [`${wheel}.dist-info/METADATA`]: `Metadata-Version: 2.1\nName: ${wheel.split('-')[0]}\nVersion: ${wheel.split('-')[1]}\n` };
    for (const library of libraries) files[library] = `fake ${library}`;
    files['nvidia/cu13/include/cuda.h'] = '// not a library';
    writeFileSync(join(wheels, `${wheel}-py3-none-manylinux_2_27_x86_64.whl`), storedZip(files));
  }
  return wheels;
}

function install(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync('bash', [SCRIPT, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

test('a wheel of onnxruntime-node\'s version puts both provider libraries beside libonnxruntime.so.1', (t) => {
  const dir = scratch(t);
  const pkg = packageDir(dir);
  const run = install(['--package-dir', pkg, '--wheel', providerWheel(dir)]);
  t.is(run.status, 0, run.stderr);
  for (const library of PROVIDERS) t.is(readFileSync(join(pkg, 'bin/napi-v6/linux/x64', library), 'utf8'), `fake ${library}`);
  t.regex(run.stdout, /the cuda execution provider of onnxruntime-node 1\.30\.0 is installed/);
});

test('--target puts them elsewhere, and nothing else of the wheel comes along', (t) => {
  const dir = scratch(t);
  const target = join(dir, 'elsewhere');
  const run = install(['--package-dir', packageDir(dir), '--wheel', providerWheel(dir), '--target', target]);
  t.is(run.status, 0, run.stderr);
  t.deepEqual(readdirSync(target).sort(), [...PROVIDERS].sort());
});

test('a wheel of another version is refused, naming both versions, and nothing is installed', (t) => {
  const dir = scratch(t);
  const target = join(dir, 'target');
  const run = install(['--package-dir', packageDir(dir), '--wheel', providerWheel(dir, { version: '1.29.0' }), '--target', target]);
  t.is(run.status, 1);
  t.regex(run.stderr, /is onnxruntime-gpu 1\.29\.0, but onnxruntime-node is 1\.30\.0/);
  t.regex(run.stderr, /use onnxruntime-gpu==1\.30\.0/);
  t.false(existsSync(target));
});

test('asking for a version other than onnxruntime-node\'s is refused before any download', (t) => {
  const dir = scratch(t);
  const run = install(['--package-dir', packageDir(dir), '--version', '1.31.1', '--wheel', join(dir, 'absent.whl')]);
  t.is(run.status, 1);
  t.regex(run.stderr, /refusing onnxruntime-gpu 1\.31\.1: onnxruntime-node is 1\.30\.0/);
});

test('a wheel without the CUDA provider, or of another package, is refused with what is wrong', (t) => {
  const dir = scratch(t);
  const pkg = packageDir(dir);
  const noCuda = install(['--package-dir', pkg, '--wheel', providerWheel(dir, { libraries: ['libonnxruntime_providers_shared.so'] })]);
  t.is(noCuda.status, 1);
  t.regex(noCuda.stderr, /has no onnxruntime\/capi\/libonnxruntime_providers_cuda\.so/);
  const other = scratch(t);
  const cpuOnly = install(['--package-dir', pkg, '--wheel', providerWheel(other, { name: 'onnxruntime' })]);
  t.is(cpuOnly.status, 1);
  t.regex(cpuOnly.stderr, /is the wheel of onnxruntime, not of onnxruntime-gpu/);
  t.false(existsSync(join(pkg, 'bin/napi-v6/linux/x64/libonnxruntime_providers_shared.so')));
});

test('--cuda-libs puts every CUDA and cuDNN library of the nvidia wheels in one folder for LD_LIBRARY_PATH', (t) => {
  const dir = scratch(t);
  const libs = join(dir, 'cuda-libs');
  const run = install(['--package-dir', packageDir(dir), '--wheel', providerWheel(dir), '--cuda-libs', libs, '--cuda-wheels', cudaWheels(dir)]);
  t.is(run.status, 0, run.stderr);
  const expected = Object.values(CUDA_WHEELS).flat().map((path) => path.split('/').at(-1)!);
  t.deepEqual(readdirSync(libs).sort(), expected.sort());
  t.regex(run.stdout, /nvidia-cublas~=13\.0/);
  t.true(run.stdout.includes(`export LD_LIBRARY_PATH=${libs}`));
});

test('--cuda-wheels without one the provider needs is refused, naming it', (t) => {
  const dir = scratch(t);
  const run = install(['--package-dir', packageDir(dir), '--wheel', providerWheel(dir), '--cuda-libs', join(dir, 'libs'), '--cuda-wheels', cudaWheels(dir, ['nvidia_cublas'])]);
  t.is(run.status, 1);
  t.regex(run.stderr, /has no wheel for nvidia-cublas/);
});

test('--help explains, and an unknown option is a usage error', (t) => {
  const help = install(['--help']);
  t.is(help.status, 0);
  t.regex(help.stdout, /--wheel FILE/);
  t.regex(help.stdout, /LD_LIBRARY_PATH/);
  const bad = install(['--no-such-option']);
  t.is(bad.status, 2);
  t.regex(bad.stderr, /unknown argument --no-such-option/);
});
