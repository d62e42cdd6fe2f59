import { Worker, type WorkerOptions } from 'node:worker_threads';
import type { WorkerInit } from '../../model/inference-protocol.js';

// Faults for the real inference workers (real ONNX Runtime sessions): a worker can be started with
// a model path that does not exist (ONNX Runtime itself refuses to load it), or with a listener
// ahead of the worker's own that crashes the thread, or hangs it, on its first request. Nothing
// here terminates a worker while ONNX Runtime works in it: that can abort the whole process.

export type Fault = { init?: WorkerInit; onFirstRequest?: 'crash' | 'hang' };

/** The thread's first request: end the thread (a crash), or block it for HANG_MS (a hung run). */
const FIRST_REQUEST_FAULT = {
  crash: 'process.exit(70)',
  hang: 'Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, HANG_MS)',
};
export const HANG_MS = 3_000;

/**
 * A `createWorker` for InferencePoolOptions that starts workers as the pool would, keeps them, and
 * lets `plan(n)` give the n-th start (0-based) a fault.
 */
export function workerRecorder(plan: (start: number, init: WorkerInit) => Fault = () => ({})) {
  const started: Worker[] = [];
  const createWorker = (url: URL, options: WorkerOptions): Worker => {
    const change = plan(started.length, options.workerData as WorkerInit);
    const workerData = change.init ?? options.workerData;
    const worker = change.onFirstRequest
      ? new Worker(
          `const HANG_MS = ${HANG_MS};
           require('node:worker_threads').parentPort.once('message', () => { ${FIRST_REQUEST_FAULT[change.onFirstRequest]}; });
           import(${JSON.stringify(url.href)});`,
          { eval: true, workerData },
        )
      : new Worker(url, { ...options, workerData });
    started.push(worker);
    return worker;
  };
  return { started, createWorker };
}

