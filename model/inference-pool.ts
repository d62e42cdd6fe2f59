import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ErrorCodes, TasteError } from '../common/errors.js';
import { validateModelSignature } from './contract.js';
import { ModelKinds } from './contract.js';
import { buildSequenceBatch, buildStepBatch, type StepInput, type WindowEvent } from './features.js';
import type { ExecutionProvider, WorkerInit, WorkerMessage, WorkerRequest } from './inference-protocol.js';
import { ExecutionProviders } from './inference-protocol.js';
import type { ModelBundle } from './model-bundle.js';

export interface InferencePoolOptions {
  bundle: ModelBundle;
  /** Where sessions run. @default 'cpu' */
  executionProvider?: ExecutionProvider;
  /** Worker threads, one session each. @default 1 */
  workers?: number;
  /**
   * Intra-op threads per session. One core is left to the main thread (decoding, Redis, Kafka
   * heartbeats): on 2 cores one ORT thread gave 1.3-2x the stream throughput of two.
   * @default max(1, floor((cores - 1) / workers))
   */
  intraOpThreads?: number;
  /** Let ORT's idle threads spin (lower latency on a dedicated machine, stolen CPU otherwise). @default false */
  allowSpinning?: boolean;
  /** Most users in one `run`; larger requests are split. @default 256 */
  maxBatchSize?: number;
}

export const defaultInferencePoolOptions = { executionProvider: 'cpu', workers: 1, maxBatchSize: 256 } as const;

/** What a stateful step gives back per user. */
export interface StepResult {
  checkpoint: Float32Array;
  embedding: Float32Array;
}

interface RunResult {
  embeddings: Float32Array;
  checkpoints: Float32Array | undefined;
}

interface Task {
  request: WorkerRequest;
  transfer: ArrayBuffer[];
  resolve: (result: RunResult) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  task: Task | undefined;
}

const WORKER_URL = new URL('./inference-worker.js', import.meta.url);

/**
 * A fixed set of worker threads, each holding one ONNX Runtime session. Callers await `embed`;
 * queued work is bounded by the number of callers awaiting, never buffered on their behalf.
 */
export class InferencePool {
  readonly #options: Required<Omit<InferencePoolOptions, 'bundle'>> & { bundle: ModelBundle };
  readonly #slots: Slot[] = [];
  /** Every worker started, ready or not, so `close` can end them all. */
  readonly #workers = new Set<Worker>();
  readonly #queue: Task[] = [];
  #nextId = 0;
  #closed = false;

  private constructor(options: InferencePoolOptions) {
    const workers = options.workers ?? defaultInferencePoolOptions.workers;
    const executionProvider = options.executionProvider ?? defaultInferencePoolOptions.executionProvider;
    if (!ExecutionProviders.includes(executionProvider)) {
      throw new TasteError(ErrorCodes.CONFIG_INVALID, `executionProvider must be one of ${ExecutionProviders.join(', ')}, got "${executionProvider}"`);
    }
    if (!Number.isInteger(workers) || workers < 1) {
      throw new TasteError(ErrorCodes.CONFIG_INVALID, `workers must be a positive integer, got ${workers}`);
    }
    const maxBatchSize = options.maxBatchSize ?? defaultInferencePoolOptions.maxBatchSize;
    if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) {
      throw new TasteError(ErrorCodes.CONFIG_INVALID, `maxBatchSize must be a positive integer, got ${maxBatchSize}`);
    }
    this.#options = {
      bundle: options.bundle,
      executionProvider,
      workers,
      intraOpThreads: options.intraOpThreads ?? Math.max(1, Math.floor((availableParallelism() - 1) / workers)),
      allowSpinning: options.allowSpinning ?? false,
      maxBatchSize,
    };
  }

  /** Starts the workers, loads the model in each, and checks its signature against the contract. */
  static async start(options: InferencePoolOptions): Promise<InferencePool> {
    const pool = new InferencePool(options);
    try {
      await Promise.all(Array.from({ length: pool.#options.workers }, () => pool.#spawn()));
    } catch (error) {
      await pool.close();
      throw error;
    }
    return pool;
  }

  get bundle(): ModelBundle {
    return this.#options.bundle;
  }

  get executionProvider(): ExecutionProvider {
    return this.#options.executionProvider;
  }

  /** One embedding per window, in order (windowed models). Windows must be non-empty. */
  async embed(windows: readonly (readonly WindowEvent[])[]): Promise<Float32Array[]> {
    const { maxBatchSize, bundle } = this.#options;
    if (bundle.metadata.kind !== ModelKinds.WINDOWED) throw wrongKind('embed', bundle.metadata.kind);
    const chunks: Promise<RunResult>[] = [];
    for (let start = 0; start < windows.length; start += maxBatchSize) {
      const batch = buildSequenceBatch(windows.slice(start, start + maxBatchSize), bundle.metadata.queryTokens);
      const transfer = [batch.itemIds, batch.eventKinds, batch.queryTokenIds, batch.gapBuckets, batch.ageBuckets];
      chunks.push(this.#run({ type: 'window', id: this.#nextId++, ...batch }, transfer.map((array) => array.buffer as ArrayBuffer)));
    }
    const dim = bundle.metadata.embeddingDim;
    const results: Float32Array[] = [];
    for (const { embeddings } of await Promise.all(chunks)) {
      for (let offset = 0; offset < embeddings.length; offset += dim) results.push(embeddings.subarray(offset, offset + dim));
    }
    return results;
  }

  /** One step per user, in order (stateful models). Each step carries at most taste.max_step_events events. */
  async step(steps: readonly StepInput[]): Promise<StepResult[]> {
    const { maxBatchSize, bundle } = this.#options;
    const stateful = bundle.metadata.stateful;
    if (!stateful) throw wrongKind('step', bundle.metadata.kind);
    const chunks: Promise<RunResult>[] = [];
    for (let start = 0; start < steps.length; start += maxBatchSize) {
      const batch = buildStepBatch(steps.slice(start, start + maxBatchSize), bundle.metadata.queryTokens, stateful.stateDim);
      if (batch.timeSteps > stateful.maxStepEvents) {
        throw new TasteError(ErrorCodes.INFERENCE_FAILED, `a step of ${batch.timeSteps} events exceeds the model's ${stateful.maxStepEvents}`);
      }
      const transfer = [batch.state, batch.checkpointAt, batch.itemIds, batch.eventKinds, batch.queryTokenIds, batch.gapBuckets];
      chunks.push(this.#run({ type: 'step', id: this.#nextId++, ...batch }, transfer.map((array) => array.buffer as ArrayBuffer)));
    }
    const dim = bundle.metadata.embeddingDim;
    const results: StepResult[] = [];
    for (const { embeddings, checkpoints } of await Promise.all(chunks)) {
      if (!checkpoints) throw new TasteError(ErrorCodes.INFERENCE_FAILED, 'the step run returned no checkpoint');
      for (let row = 0; row * dim < embeddings.length; row++) {
        results.push({
          embedding: embeddings.subarray(row * dim, (row + 1) * dim),
          checkpoint: checkpoints.subarray(row * stateful.stateDim, (row + 1) * stateful.stateDim),
        });
      }
    }
    return results;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const task of this.#queue.splice(0)) task.reject(poolClosed());
    this.#slots.length = 0;
    await Promise.all([...this.#workers].map((worker) => worker.terminate()));
    this.#workers.clear();
  }

  #run(request: WorkerRequest, transfer: ArrayBuffer[]): Promise<RunResult> {
    if (this.#closed) return Promise.reject(poolClosed());
    return new Promise((resolve, reject) => {
      this.#queue.push({ request, transfer, resolve, reject });
      this.#dispatch();
    });
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      if (slot.task) continue;
      const task = this.#queue.shift();
      if (!task) return;
      slot.task = task;
      slot.worker.postMessage(task.request, task.transfer);
    }
  }

  #spawn(): Promise<void> {
    const { bundle, executionProvider, intraOpThreads, allowSpinning } = this.#options;
    const init: WorkerInit = { modelPath: bundle.onnxPath, executionProvider, intraOpThreads, allowSpinning };
    const worker = new Worker(WORKER_URL, { workerData: init });
    const slot: Slot = { worker, task: undefined };
    this.#workers.add(worker);
    return new Promise((resolve, reject) => {
      let ready = false;
      worker.on('message', (message: WorkerMessage) => {
        switch (message.type) {
          case 'ready':
            try {
              validateModelSignature(message.inputs, message.outputs, bundle.metadata, bundle.onnxPath);
            } catch (error) {
              reject(error);
              return;
            }
            ready = true;
            this.#slots.push(slot);
            resolve();
            this.#dispatch();
            return;
          case 'load-failed':
            reject(
              new TasteError(
                ErrorCodes.MODEL_LOAD,
                `ONNX Runtime could not load ${bundle.onnxPath} with the ${executionProvider} provider: ${message.message}`,
              ),
            );
            return;
          case 'result':
          case 'failed': {
            const task = slot.task;
            slot.task = undefined;
            if (task && message.type === 'result') task.resolve({ embeddings: message.embeddings, checkpoints: message.checkpoints });
            else if (task && message.type === 'failed') {
              task.reject(new TasteError(ErrorCodes.INFERENCE_FAILED, `inference failed: ${message.message}`));
            }
            this.#dispatch();
            return;
          }
        }
      });
      worker.on('error', (error) => {
        if (!ready) reject(new TasteError(ErrorCodes.MODEL_LOAD, `inference worker failed to start: ${error.message}`, { cause: error }));
        slot.task?.reject(new TasteError(ErrorCodes.INFERENCE_FAILED, `inference worker crashed: ${error.message}`, { cause: error, canRetry: true }));
        slot.task = undefined;
      });
      worker.on('exit', () => {
        this.#workers.delete(worker);
        const index = this.#slots.indexOf(slot);
        if (index >= 0) this.#slots.splice(index, 1);
        slot.task?.reject(new TasteError(ErrorCodes.INFERENCE_FAILED, 'inference worker exited', { canRetry: true }));
        slot.task = undefined;
        // A crashed worker is replaced so the pool keeps its size; a closing pool lets it go.
        if (ready && !this.#closed) this.#spawn().catch(() => undefined);
      });
    });
  }
}

function wrongKind(method: string, kind: string): TasteError {
  return new TasteError(ErrorCodes.CONFIG_INVALID, `InferencePool.${method} does not apply to a ${kind} model`);
}

function poolClosed(): TasteError {
  return new TasteError(ErrorCodes.POOL_CLOSED, 'the inference pool is closed');
}
