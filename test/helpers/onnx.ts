import protobuf from 'protobufjs';

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
