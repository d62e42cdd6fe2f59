import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';
import { ErrorCodes, TasteError } from '../common/errors.js';
import { MODEL_OUTPUT, STEP_CHECKPOINT_OUTPUT } from './contract.js';
import type { StepRequest, WorkerInit, WorkerMessage, WorkerRequest } from './inference-protocol.js';
import { stepFeeds, windowFeeds } from './ort-feeds.js';

// One ONNX Runtime session per worker thread: `run` blocks the thread that calls it, and the
// main thread must stay free for Kafka heartbeats and gRPC.

const port = parentPort;
if (!port) throw new TasteError(ErrorCodes.INTERNAL, 'inference-worker must run as a worker thread');
const init = workerData as WorkerInit;

function post(message: WorkerMessage, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

function valueInfo(values: readonly ort.InferenceSession.ValueMetadata[]) {
  return values.map((value) =>
    value.isTensor
      ? { name: value.name, isTensor: true, type: value.type, shape: [...value.shape] }
      : { name: value.name, isTensor: false },
  );
}

async function main(): Promise<void> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(init.modelPath, {
      executionProviders: [init.executionProvider],
      intraOpNumThreads: init.intraOpThreads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      // Spinning threads burn the cores Kafka, Redis and gRPC need between runs (bench/RESULTS.md).
      extra: { session: { intra_op: { allow_spinning: init.allowSpinning ? '1' : '0' } } },
    });
  } catch (error) {
    post({ type: 'load-failed', message: error instanceof Error ? error.message : String(error) });
    return;
  }
  post({ type: 'ready', inputs: valueInfo(session.inputMetadata), outputs: valueInfo(session.outputMetadata) });

  port!.on('message', async (request: WorkerRequest) => {
    try {
      if (request.type === 'step') {
        await runStep(session, request);
        return;
      }
      const outputs = await session.run(windowFeeds(request), [MODEL_OUTPUT]);
      const output = outputs[MODEL_OUTPUT];
      if (!output) throw new TasteError(ErrorCodes.MODEL_CONTRACT, `model produced no "${MODEL_OUTPUT}"`);
      const data = output.data as Float32Array;
      const embeddings = new Float32Array(data); // own the buffer so it can be transferred
      post({ type: 'result', id: request.id, embeddings, dim: output.dims[1] ?? 0 }, [embeddings.buffer]);
    } catch (error) {
      post({ type: 'failed', id: request.id, message: error instanceof Error ? error.message : String(error) });
    }
  });
}

async function runStep(session: ort.InferenceSession, request: StepRequest): Promise<void> {
  const outputs = await session.run(stepFeeds(request), [STEP_CHECKPOINT_OUTPUT, MODEL_OUTPUT]);
  const embedding = outputs[MODEL_OUTPUT];
  const checkpoint = outputs[STEP_CHECKPOINT_OUTPUT];
  if (!embedding || !checkpoint) throw new TasteError(ErrorCodes.MODEL_CONTRACT, `model produced no "${MODEL_OUTPUT}" or "${STEP_CHECKPOINT_OUTPUT}"`);
  const embeddings = new Float32Array(embedding.data as Float32Array);
  const checkpoints = new Float32Array(checkpoint.data as Float32Array);
  post({ type: 'result', id: request.id, embeddings, dim: embedding.dims[1] ?? 0, checkpoints }, [embeddings.buffer, checkpoints.buffer]);
}

void main();
