import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { readOnnxMetadataProps } from '../../model/onnx-metadata.js';

/**
 * Returns ONNX bytes with ModelProto.metadata_props (field 14) replaced by `props`, every other
 * field copied as is: a real model file with a contract problem, for the refusal tests.
 */
export function withOnnxMetadata(bytes: Uint8Array, props: ReadonlyMap<string, string>): Uint8Array {
  const reader = protobuf.Reader.create(bytes);
  const kept: Uint8Array[] = [];
  while (reader.pos < reader.len) {
    const start = reader.pos;
    const tag = reader.uint32();
    reader.skipType(tag & 7);
    if (tag >>> 3 !== 14) kept.push(bytes.subarray(start, reader.pos));
  }
  const writer = protobuf.Writer.create();
  for (const [key, value] of props) {
    writer.uint32((14 << 3) | 2).fork().uint32((1 << 3) | 2).string(key).uint32((2 << 3) | 2).string(value).ldelim();
  }
  return Buffer.concat([...kept, writer.finish()]);
}

/**
 * Copies a model directory to `target` with its ONNX metadata edited by `edit` (the weights and
 * every other file as they are): a model with a contract problem, or the same model under another
 * `taste.model_version` to run as a shadow. Returns `target`.
 */
export async function copyModelWithMetadata(source: string, target: string, edit: (props: Map<string, string>) => void): Promise<string> {
  await cp(source, target, { recursive: true });
  const onnxPath = join(target, 'model.onnx');
  const onnx = await readFile(onnxPath);
  const props = new Map(readOnnxMetadataProps(onnx));
  edit(props);
  await writeFile(onnxPath, withOnnxMetadata(onnx, props));
  return target;
}

/** The same model as `source` (same weights, same vocabulary) under model version `version`. */
export function copyModelAsVersion(source: string, target: string, version: string): Promise<string> {
  return copyModelWithMetadata(source, target, (props) => props.set('taste.model_version', version));
}
