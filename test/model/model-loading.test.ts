import anyTest, { type TestFn } from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes, TasteError } from '../../common/errors.js';
import { InferencePool } from '../../model/inference-pool.js';
import { loadModelBundle, type ModelBundle } from '../../model/model-bundle.js';
import { readOnnxMetadataProps } from '../../model/onnx-metadata.js';
import { DEFAULT_MODEL_DIR } from '../helpers/environment.js';
import { copyModelWithMetadata } from '../helpers/onnx.js';
import { playWindow } from '../helpers/windows.js';

interface Context {
  bundle: ModelBundle;
  pool: InferencePool;
  scratch: string;
}
const test = anyTest as TestFn<Context>;

test.before(async (t) => {
  const bundle = await loadModelBundle(DEFAULT_MODEL_DIR);
  const pool = await InferencePool.start({ bundle, intraOpThreads: 1 });
  t.context = { bundle, pool, scratch: await mkdtemp(join(tmpdir(), 'taste-model-')) };
});

test.after.always(async (t) => {
  await t.context.pool?.close();
  if (t.context.scratch) await rm(t.context.scratch, { recursive: true, force: true });
});

/** A copy of the default model directory with its ONNX metadata edited. */
function modelWith(t: { context: Context }, name: string, edit: (props: Map<string, string>) => void): Promise<string> {
  return copyModelWithMetadata(DEFAULT_MODEL_DIR, join(t.context.scratch, name), edit);
}

test('the shipped default model meets the contract', (t) => {
  const { metadata, vocabulary, itemTable } = t.context.bundle;
  t.regex(metadata.modelVersion, /^[A-Za-z0-9._-]+$/);
  t.is(vocabulary.size, metadata.numItems);
  t.is(itemTable.rows, metadata.numItems);
  t.is(vocabulary.uriOf(0), '<pad>');
  t.is(vocabulary.idOf('no:such:item'), 1);
});

test('embeddings are unit vectors of the declared dimension, one per window, in order', async (t) => {
  const windows = [playWindow(1), playWindow(7), playWindow(3)];
  const embeddings = await t.context.pool.embed(windows);
  t.is(embeddings.length, 3);
  for (const embedding of embeddings) {
    t.is(embedding.length, t.context.bundle.metadata.embeddingDim);
    t.true(Math.abs(Math.hypot(...embedding) - 1) < 1e-4);
  }
  const [alone] = await t.context.pool.embed([playWindow(3)]);
  for (let d = 0; d < alone!.length; d++) t.true(Math.abs(alone![d]! - embeddings[2]![d]!) < 1e-5, 'padding does not change a user');
});

test('a model for another contract is refused with a message that says why', async (t) => {
  const dir = await modelWith(t, 'other-contract', (props) => props.set('taste.contract', 'someone.else.v9'));
  const error = await t.throwsAsync(loadModelBundle(dir), { instanceOf: TasteError });
  t.is(error?.code, ErrorCodes.MODEL_CONTRACT);
  t.regex(error!.message, /taste\.contract.*someone\.else\.v9/);
});

test('a model whose output disagrees with its declared dimension is refused at start', async (t) => {
  const dir = await modelWith(t, 'wrong-dim', (props) => props.set('taste.embedding_dim', '63'));
  // The item table no longer matches either; make it fit so the signature check is what fails.
  const numItems = Number(readOnnxMetadataProps(await readFile(join(dir, 'model.onnx'))).get('taste.num_items'));
  await writeFile(join(dir, 'item_embeddings.f32'), Buffer.alloc(numItems * 63 * 4));
  const bundle = await loadModelBundle(dir);
  const error = await t.throwsAsync(InferencePool.start({ bundle, intraOpThreads: 1 }), { instanceOf: TasteError });
  t.is(error?.code, ErrorCodes.MODEL_CONTRACT);
  t.regex(error!.message, /dimension/);
});

test('a vocabulary that does not match the model is refused', async (t) => {
  const dir = await modelWith(t, 'short-vocab', () => undefined);
  await writeFile(join(dir, 'items.tsv'), '<pad>\n<unk>\ntaste:track:0\n');
  const error = await t.throwsAsync(loadModelBundle(dir), { instanceOf: TasteError });
  t.regex(error!.message, /items\.tsv has 3 items/);
});

test('a directory without a model says so', async (t) => {
  const error = await t.throwsAsync(loadModelBundle(join(t.context.scratch, 'nothing-here')), { instanceOf: TasteError });
  t.is(error?.code, ErrorCodes.MODEL_LOAD);
});

test('a windowed graph that claims to be stateful is refused at start, naming the missing input', async (t) => {
  const dir = await modelWith(t, 'claims-stateful', (props) => {
    props.set('taste.model_kind', 'stateful');
    props.set('taste.state_dim', '32');
    props.set('taste.tail_events', '8');
    props.set('taste.max_step_events', '64');
  });
  const bundle = await loadModelBundle(dir);
  t.is(bundle.metadata.kind, 'stateful');
  const error = await t.throwsAsync(InferencePool.start({ bundle, intraOpThreads: 1 }), { instanceOf: TasteError });
  t.is(error?.code, ErrorCodes.MODEL_CONTRACT);
  t.regex(error!.message, /missing input "state" of a stateful model/);
});

test('an unknown model kind, or a tail as long as a step, is refused with the key that is wrong', async (t) => {
  const unknown = await modelWith(t, 'unknown-kind', (props) => props.set('taste.model_kind', 'recurrent'));
  const error = await t.throwsAsync(loadModelBundle(unknown), { instanceOf: TasteError });
  t.regex(error!.message, /taste\.model_kind is "recurrent"/);
  const tail = await modelWith(t, 'tail-too-long', (props) => {
    props.set('taste.model_kind', 'stateful');
    props.set('taste.state_dim', '32');
    props.set('taste.tail_events', '64');
    props.set('taste.max_step_events', '64');
  });
  const tailError = await t.throwsAsync(loadModelBundle(tail), { instanceOf: TasteError });
  t.regex(tailError!.message, /taste\.tail_events \(64\) must be below taste\.max_step_events \(64\)/);
});

test('a windowed pool refuses stateful steps (and says so) rather than running the wrong graph', async (t) => {
  const error = await t.throwsAsync(t.context.pool.step([]), { instanceOf: TasteError });
  t.regex(error!.message, /step does not apply to a windowed model/);
});
