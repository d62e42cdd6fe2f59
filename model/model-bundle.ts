import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ErrorCodes, TasteError } from '../common/errors.js';
import type * as events from '../events/featurizer.js';
import { type ModelMetadata, parseModelMetadata } from './contract.js';
import { PAD_ITEM_ID, UNKNOWN_ITEM_ID } from './features.js';
import { ItemScorer } from './item-scorer.js';
import { readOnnxMetadataProps } from './onnx-metadata.js';

export const ModelFiles = {
  onnx: 'model.onnx',
  items: 'items.tsv',
  itemTable: 'item_embeddings.f32',
} as const;

/** Item URI ↔ id, as the model was trained (items.tsv: line i is the URI of id i). */
export class ItemVocabulary implements events.ItemVocabulary {
  readonly #ids: Map<string, number>;
  readonly #uris: readonly string[];

  constructor(uris: readonly string[]) {
    this.#uris = uris;
    this.#ids = new Map(uris.map((uri, id) => [uri, id]));
  }

  get size(): number {
    return this.#uris.length;
  }

  /** The id of a URI; `UNKNOWN_ITEM_ID` for one the model has never seen, `PAD_ITEM_ID` for none. */
  idOf(uri: string): number {
    if (uri === '') return PAD_ITEM_ID;
    const id = this.#ids.get(uri);
    return id === undefined || id <= UNKNOWN_ITEM_ID ? UNKNOWN_ITEM_ID : id;
  }

  uriOf(id: number): string | undefined {
    return this.#uris[id];
  }
}

/** Everything a model directory holds, read and cross-checked; the ONNX session is built elsewhere. */
export interface ModelBundle {
  directory: string;
  onnxPath: string;
  metadata: ModelMetadata;
  vocabulary: ItemVocabulary;
  /** The item table, and item scoring against it. */
  itemTable: ItemScorer;
}

async function readModelFile(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (cause) {
    throw new TasteError(ErrorCodes.MODEL_LOAD, `cannot read model file ${path}: is --model a model directory?`, { cause });
  }
}

export async function loadModelBundle(directory: string): Promise<ModelBundle> {
  const dir = resolve(directory);
  const onnxPath = join(dir, ModelFiles.onnx);
  const metadata = parseModelMetadata(readOnnxMetadataProps(await readModelFile(onnxPath)), onnxPath);

  const itemsPath = join(dir, ModelFiles.items);
  const uris = (await readModelFile(itemsPath)).toString('utf8').split('\n');
  if (uris[uris.length - 1] === '') uris.pop();
  if (uris.length !== metadata.numItems) {
    throw new TasteError(
      ErrorCodes.MODEL_CONTRACT,
      `${itemsPath} has ${uris.length} items but the model's metadata taste.num_items says ${metadata.numItems}`,
    );
  }
  if (uris[PAD_ITEM_ID] !== '<pad>' || uris[UNKNOWN_ITEM_ID] !== '<unk>') {
    throw new TasteError(ErrorCodes.MODEL_CONTRACT, `${itemsPath} must start with the lines "<pad>" and "<unk>"`);
  }

  const tablePath = join(dir, ModelFiles.itemTable);
  const tableBytes = await readModelFile(tablePath);
  const expectedBytes = metadata.numItems * metadata.embeddingDim * 4;
  if (tableBytes.byteLength !== expectedBytes) {
    throw new TasteError(
      ErrorCodes.MODEL_CONTRACT,
      `${tablePath} has ${tableBytes.byteLength} bytes, expected ${metadata.numItems} items x ${metadata.embeddingDim} dims x 4 = ${expectedBytes}`,
    );
  }
  const vectors = new Float32Array(metadata.numItems * metadata.embeddingDim);
  new Uint8Array(vectors.buffer).set(tableBytes);
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
    throw new TasteError(ErrorCodes.MODEL_LOAD, 'item tables are little-endian float32; this machine is big-endian');
  }
  return {
    directory: dir,
    onnxPath,
    metadata,
    vocabulary: new ItemVocabulary(uris),
    itemTable: new ItemScorer(vectors, metadata.embeddingDim),
  };
}
