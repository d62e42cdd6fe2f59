import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { buildFileDescriptors, type FileDescriptorBytes, type ProtoSource } from '../proto/file-descriptors.js';
import { EVENTS_PROTO, PROTO_ROOT, SERVICE_PROTO } from '../proto/paths.js';

// @grpc/reflection ships the reflection protos it serves; they are published like ours.
const reflectionProtoRoot = join(dirname(createRequire(import.meta.url).resolve('@grpc/reflection')), '../proto');

/**
 * The files reflection publishes, under the names the canonical copies have (grpc-health-check
 * keeps health.proto at health/v1/, the grpc-proto repository and every other server at grpc/health/v1/).
 * The reflection protos are among them so that the reflection service lists itself.
 */
export const REFLECTED_PROTOS: readonly ProtoSource[] = [
  { name: SERVICE_PROTO, path: join(PROTO_ROOT, SERVICE_PROTO) },
  // The service imports it (ItemKind), so a client resolving the service needs it too.
  { name: EVENTS_PROTO, path: join(PROTO_ROOT, EVENTS_PROTO) },
  { name: 'grpc/health/v1/health.proto', path: healthProtoPath },
  { name: 'grpc/reflection/v1/reflection.proto', path: join(reflectionProtoRoot, 'grpc/reflection/v1/reflection.proto') },
  { name: 'grpc/reflection/v1alpha/reflection.proto', path: join(reflectionProtoRoot, 'grpc/reflection/v1alpha/reflection.proto') },
];

// Parsed once per process: every server started (the CLI's, the tests') publishes the same files.
let defaultFiles: FileDescriptorBytes[] | undefined;

/**
 * grpc.reflection v1 and v1alpha over the .proto files as protoc compiles them: the file names,
 * snake_case field names and json_name values of the contract, where the package definition that
 * proto-loader builds for the runtime (camelCase, one `taste_v1.proto` per package) would give
 * grpcurl and Python or Go dynamic clients names that are not the contract.
 */
export class ProtoReflection {
  readonly #service: ReflectionService;

  constructor(sources: readonly ProtoSource[] = REFLECTED_PROTOS) {
    const files = sources === REFLECTED_PROTOS ? (defaultFiles ??= buildFileDescriptors(sources)) : buildFileDescriptors(sources);
    this.#service = new ReflectionService(asPackageDefinition(files));
  }

  addToServer(server: grpc.Server): void {
    this.#service.addToServer(server);
  }
}

/**
 * @grpc/reflection takes a proto-loader PackageDefinition but reads only the encoded
 * FileDescriptorProtos of its entries (indexing symbols, dependencies and services from them),
 * so one entry per file carries our descriptors unchanged.
 */
function asPackageDefinition(files: readonly FileDescriptorBytes[]): PackageDefinition {
  return Object.fromEntries(
    files.map((file) => [file.name, { format: 'Protocol Buffer 3 FileDescriptorProto', fileDescriptorProtos: [Buffer.from(file.bytes)] }]),
  ) as unknown as PackageDefinition;
}
