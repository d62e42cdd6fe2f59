import protobuf from 'protobufjs';

const METADATA_PROPS_FIELD = 14; // ModelProto.metadata_props (onnx.proto3)
const LENGTH_DELIMITED = 2;

/**
 * Reads ModelProto.metadata_props from ONNX bytes. onnxruntime-node exposes input/output
 * metadata but not the model's custom properties, so we read them from the protobuf directly,
 * skipping everything else (the graph and its weights) without decoding it.
 */
export function readOnnxMetadataProps(bytes: Uint8Array): Map<string, string> {
  const reader = protobuf.Reader.create(bytes);
  const props = new Map<string, string>();
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const field = tag >>> 3;
    const wireType = tag & 7;
    if (field === METADATA_PROPS_FIELD && wireType === LENGTH_DELIMITED) {
      const entry = readStringEntry(reader.bytes());
      if (entry) props.set(entry.key, entry.value);
    } else {
      reader.skipType(wireType);
    }
  }
  return props;
}

function readStringEntry(bytes: Uint8Array): { key: string; value: string } | undefined {
  const reader = protobuf.Reader.create(bytes);
  let key: string | undefined;
  let value = '';
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag >>> 3 === 1) key = reader.string();
    else if (tag >>> 3 === 2) value = reader.string();
    else reader.skipType(tag & 7);
  }
  return key === undefined ? undefined : { key, value };
}
