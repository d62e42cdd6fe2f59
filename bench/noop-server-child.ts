// The framework's floor for bench/serving-floor.bench.ts: a grpc-js server that answers
// EmbeddingService's GetUserEmbedding and BatchGetUserEmbeddings with constant, precomputed
// response bytes (the same bytes `taste serve` gave for a real user and a real batch), decoding
// nothing and reading nothing. Whatever `taste serve` spends above this server's CPU per call is
// its own work: the store read, decoding, encoding. Prints `listening <port>` once bound.
//
//   node dist/bench/noop-server-child.js --port P --single FILE --batch FILE
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { EMBEDDING_SERVICE_NAME } from '../serving/service-definition.js';

const { values } = parseArgs({ options: { port: { type: 'string' }, single: { type: 'string' }, batch: { type: 'string' } } });
if (!values.port || !values.single || !values.batch) throw new Error('usage: noop-server-child --port P --single FILE --batch FILE');
const singleBytes = readFileSync(values.single);
const batchBytes = readFileSync(values.batch);

const bytes = (buffer: Buffer) => buffer;
const method = (name: string): grpc.MethodDefinition<Buffer, Buffer> => ({
  path: `/${EMBEDDING_SERVICE_NAME}/${name}`,
  requestStream: false,
  responseStream: false,
  requestSerialize: bytes,
  requestDeserialize: bytes,
  responseSerialize: bytes,
  responseDeserialize: bytes,
});
const definition: grpc.ServiceDefinition = {
  GetUserEmbedding: method('GetUserEmbedding'),
  BatchGetUserEmbeddings: method('BatchGetUserEmbeddings'),
};
const answer = (response: Buffer): grpc.handleUnaryCall<Buffer, Buffer> => (_call, callback) => callback(null, response);

const server = new grpc.Server();
server.addService(definition, { GetUserEmbedding: answer(singleBytes), BatchGetUserEmbeddings: answer(batchBytes) });
server.bindAsync(`127.0.0.1:${values.port}`, grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  process.stdout.write(`listening ${port}\n`);
});
process.once('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
