import anyTest, { type TestFn } from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { ErrorCodes, TasteError } from '../../common/errors.js';
import { InferencePool, type InferencePoolEvent } from '../../model/inference-pool.js';
import { loadModelBundle, type ModelBundle } from '../../model/model-bundle.js';
import { DEFAULT_MODEL_DIR } from '../helpers/environment.js';
import { playWindow } from '../helpers/windows.js';

// What a pool does when asked for a provider this machine may not have. The expectation comes
// from asking onnxruntime-node directly, in this process, whether a session starts on each
// provider: on the CI machines (no GPU, no CUDA provider installed) none does but cpu, and the
// pool must then refuse with a coded error that names what is missing.

interface Context {
  bundle: ModelBundle;
  scratch: string;
  /** What onnxruntime-node itself says for each GPU provider: undefined when a session starts. */
  direct: { cuda: string | undefined; webgpu: string | undefined };
}
const test = anyTest as TestFn<Context>;

async function directFailure(modelPath: string, provider: 'cuda' | 'webgpu'): Promise<string | undefined> {
  try {
    const session = await ort.InferenceSession.create(modelPath, { executionProviders: [provider] });
    await session.release();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

test.before(async (t) => {
  const bundle = await loadModelBundle(DEFAULT_MODEL_DIR);
  t.context = {
    bundle,
    scratch: await mkdtemp(join(tmpdir(), 'taste-providers-')),
    direct: { cuda: await directFailure(bundle.onnxPath, 'cuda'), webgpu: await directFailure(bundle.onnxPath, 'webgpu') },
  };
});

test.after.always(async (t) => {
  if (t.context.scratch) await rm(t.context.scratch, { recursive: true, force: true });
});

async function startFailure(start: Promise<InferencePool>): Promise<TasteError> {
  try {
    const pool = await start;
    await pool.close();
  } catch (error) {
    if (error instanceof TasteError) return error;
    throw error;
  }
  throw new Error('expected the pool not to start');
}

test('cuda without its provider libraries is refused at start, naming both libraries and the install script', async (t) => {
  const empty = join(t.context.scratch, 'no-provider');
  const error = await startFailure(InferencePool.start({ bundle: t.context.bundle, executionProvider: 'cuda', providerLibraryDir: empty, intraOpThreads: 1 }));
  t.is(error.code, ErrorCodes.EXECUTION_PROVIDER_UNAVAILABLE);
  t.false(error.canRetry);
  t.true(error.message.includes(empty));
  t.regex(error.message, /libonnxruntime_providers_shared\.so and libonnxruntime_providers_cuda\.so/);
  t.regex(error.message, /scripts\/install-cuda-provider\.sh/);
});

test('cuda whose libraries are installed but cannot start (no CUDA libraries, no driver) is refused with what else it needs', async (t) => {
  if (t.context.direct.cuda === undefined) {
    t.pass('a cuda session starts on this machine; nothing to refuse');
    return;
  }
  // Present to the pool's check; onnxruntime-node loads from its own folder and fails there.
  const present = await mkdtemp(join(t.context.scratch, 'present-'));
  for (const library of ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so']) await writeFile(join(present, library), '');
  const error = await startFailure(InferencePool.start({ bundle: t.context.bundle, executionProvider: 'cuda', providerLibraryDir: present, intraOpThreads: 1 }));
  t.is(error.code, ErrorCodes.EXECUTION_PROVIDER_UNAVAILABLE);
  t.regex(error.message, /LD_LIBRARY_PATH/);
  t.regex(error.message, /libcuda\.so\.1/);
  t.true(error.message.includes(t.context.direct.cuda), 'it quotes ONNX Runtime');
});

test('webgpu without a GPU adapter is refused at start, saying no adapter was found', async (t) => {
  if (t.context.direct.webgpu === undefined) {
    t.pass('a webgpu session starts on this machine; nothing to refuse');
    return;
  }
  const error = await startFailure(InferencePool.start({ bundle: t.context.bundle, executionProvider: 'webgpu', intraOpThreads: 1 }));
  t.is(error.code, ErrorCodes.EXECUTION_PROVIDER_UNAVAILABLE);
  t.false(error.canRetry);
  t.regex(error.message, /no GPU adapter was found/);
  t.regex(error.message, /libvulkan\.so\.1/);
});

test('auto picks the first of cuda, webgpu, cpu that starts, says why it passed the others over, and runs', async (t) => {
  const { cuda, webgpu } = t.context.direct;
  // The rule, written out: cuda when a session starts on it, else webgpu, else cpu.
  const expected = cuda === undefined ? 'cuda' : webgpu === undefined ? 'webgpu' : 'cpu';
  const events: InferencePoolEvent[] = [];
  const pool = await InferencePool.start({ bundle: t.context.bundle, executionProvider: 'auto', intraOpThreads: 1, observer: { onEvent: (event) => events.push(event) } });
  try {
    t.is(pool.executionProvider, expected);
    const chosen = events.find((event) => event.type === 'provider-chosen');
    if (chosen?.type !== 'provider-chosen') throw new Error('no provider-chosen event');
    t.is(chosen.provider, expected);
    const skipped = expected === 'cuda' ? [] : expected === 'webgpu' ? ['cuda'] : ['cuda', 'webgpu'];
    t.deepEqual(
      chosen.skipped.map((entry) => entry.provider),
      skipped,
    );
    if (expected === 'cpu') {
      t.regex(chosen.skipped[1]!.reason, /no GPU adapter was found/);
      t.regex(chosen.skipped[0]!.reason, /cuda execution provider (is not installed|could not start)/);
    }
    const [embedding] = await pool.embed([playWindow(5)]);
    t.is(embedding?.length, t.context.bundle.metadata.embeddingDim);
  } finally {
    await pool.close();
  }
});

test('auto does not hide a broken model: the cpu provider\'s error is the answer', async (t) => {
  const broken = join(t.context.scratch, 'broken.onnx');
  await writeFile(broken, 'not an onnx graph');
  const bundle: ModelBundle = { ...t.context.bundle, onnxPath: broken };
  const error = await startFailure(InferencePool.start({ bundle, executionProvider: 'auto', intraOpThreads: 1 }));
  t.is(error.code, ErrorCodes.MODEL_LOAD);
  t.regex(error.message, /with the cpu provider/);
});

test('an unknown provider is a configuration error listing the choices', async (t) => {
  const error = await startFailure(InferencePool.start({ bundle: t.context.bundle, executionProvider: 'tpu' as 'cpu' }));
  t.is(error.code, ErrorCodes.CONFIG_INVALID);
  t.regex(error.message, /cpu, webgpu, cuda, auto/);
});
