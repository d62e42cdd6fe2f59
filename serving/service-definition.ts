import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from '../proto/generated/embedding_service.js';
import { PROTO_ROOT, SERVICE_PROTO } from '../proto/paths.js';

/** Fully-qualified name, as health checks and reflection know the service. */
export const EMBEDDING_SERVICE_NAME = 'taste.v1.EmbeddingService';

// The same options `npm run gen:proto` uses, so runtime objects have the generated types' shape:
// camelCase fields, int64 as numbers, enums as names, defaults filled in, oneof name in `result`.
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

let cached: protoLoader.PackageDefinition | undefined;

/** The taste.v1 service package, parsed once from the .proto (the contract, not a copy of it). */
export function loadServicePackage(): protoLoader.PackageDefinition {
  cached ??= protoLoader.loadSync(SERVICE_PROTO, PROTO_LOADER_OPTIONS);
  return cached;
}

export function loadServiceTypes(): ProtoGrpcType {
  return grpc.loadPackageDefinition(loadServicePackage()) as unknown as ProtoGrpcType;
}
