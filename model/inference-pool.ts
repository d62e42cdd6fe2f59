import { availableParallelism } from 'node:os';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { ErrorCodes, TasteError } from '../common/errors.js';
import { sleep } from '../common/retry.js';
import { validateModelSignature } from './contract.js';
import { ModelKinds } from './contract.js';
import { buildSequenceBatch, buildStepBatch, type StepInput } from './features.js';
import type { WindowEvent } from '../events/window-event.js';
import { AUTO_PROVIDER_ORDER, checkCudaInstalled, onnxruntimeLibraryDir, sessionLoadError, type SkippedProvider } from './execution-providers.js';
import type { ExecutionProvider, ExecutionProviderChoice, WorkerInit, WorkerMessage, WorkerRequest } from './inference-protocol.js';
import { ExecutionProviderChoices } from './inference-protocol.js';
import type { ModelBundle } from './model-bundle.js';

export interface InferencePoolOptions {
  bundle: ModelBundle;
  /**
   * Where sessions run. `auto` tries cuda, then webgpu, then cpu, and keeps the first on which
   * every worker starts; `executionProvider` then says which, and a `provider-chosen` event why.
   * A provider that cannot run here fails `start` with TASTE_EXECUTION_PROVIDER_UNAVAILABLE.
   * @default 'cpu'
   */
  executionProvider?: ExecutionProviderChoice;
  /** Where the CUDA provider's libraries must lie. Tests point it elsewhere. @default onnxruntime-node's bin/napi-v6/<platform>/<arch> */
  providerLibraryDir?: string;
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
  /**
   * Longest one run may take, queueing included. A run past it is rejected (retryable) and its
   * worker replaced: ONNX Runtime cannot cancel a run, so the stuck worker gets no more work and
   * is ended once its run returns.
   * @default 30000
   */
  taskTimeoutMs?: number;
  /** First wait before starting a replacement worker again after one failed to start; doubles up to 30 s. @default 250 */
  respawnDelayMs?: number;
  /** Told what happens to the workers (logs, metrics, readiness). */
  observer?: InferencePoolObserver;
  /** How a worker thread starts. Tests wrap it to hold on to, and kill, the real workers. @default new Worker(url, options) */
  createWorker?: (url: URL, options: WorkerOptions) => Worker;
}

export const defaultInferencePoolOptions = { executionProvider: 'cpu', workers: 1, maxBatchSize: 256, taskTimeoutMs: 30_000, respawnDelayMs: 250 } as const;

const MAX_RESPAWN_DELAY_MS = 30_000;

/**
 * What the pool reports. `health` turns false when no worker is left to run inference and true
 * once one is back; while false, `embed` and `step` fail fast with TASTE_INFERENCE_UNAVAILABLE.
 */
export type InferencePoolEvent =
  | { type: 'provider-chosen'; provider: ExecutionProvider; skipped: SkippedProvider[] }
  | { type: 'worker-exited'; workersLeft: number }
  | { type: 'worker-replaced'; workers: number }
  | { type: 'respawn-failed'; error: TasteError; attempt: number; retryInMs: number }
  | { type: 'task-timed-out'; timeoutMs: number; workerReplaced: boolean }
  | { type: 'health'; healthy: boolean };

/** What the pool reports; the stream job logs it and tracks readiness, metrics/ counts it. */
export interface InferencePoolObserver {
  /** Once `start` has its workers up: how many. */
  onStarted?(workers: number): void;
  /** Every change to the workers, as it happens. */
  onEvent?(event: InferencePoolEvent): void;
}

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
  timer: NodeJS.Timeout;
}

interface Slot {
  worker: Worker;
  task: Task | undefined;
  /** Native work in the worker (loading the model, or a run) that must end before the thread may be terminated. */
  busy: Busy | undefined;
  /** Timed out: gets no more work, and is ended once its run returns. */
  abandoned: boolean;
}

interface Busy {
  done: Promise<void>;
  end: () => void;
}

// Terminating a worker thread while ONNX Runtime works in it can abort the whole process
// (onnxruntime-node throws from a native callback into a torn-down environment). So a worker is
// only terminated when idle: `close` waits this long for runs and loads to end first.
const CLOSE_GRACE_MS = 10_000;

const WORKER_URL = new URL('./inference-worker.js', import.meta.url);

/**
 * A fixed set of worker threads, each holding one ONNX Runtime session. Callers await `embed`;
 * queued work is bounded by the number of callers awaiting, never buffered on their behalf.
 * A worker that dies is replaced, with backoff while replacements fail; no run waits longer
 * than `taskTimeoutMs`, and with no worker left every caller gets a coded, retryable error.
 */
export class InferencePool {
  readonly #options: Required<Omit<InferencePoolOptions, 'bundle' | 'observer' | 'executionProvider'>> &
    Pick<InferencePoolOptions, 'observer'> & { bundle: ModelBundle; executionProvider: ExecutionProvider };
  readonly #slots: Slot[] = [];
  /** Every worker started, ready or not, so `close` can end them all. */
  readonly #workers = new Set<Worker>();
  readonly #queue: Task[] = [];
  /** Replacements owed: workers that died and have not been replaced yet. */
  #missing = 0;
  #respawning = false;
  #healthy = false;
  #nextId = 0;
  #closed = false;
  /** Workers with native work in flight, which `close` waits for before terminating them. */
  readonly #busy = new Map<Worker, Busy>();
  /** Cuts a respawn backoff short when the pool closes. */
  readonly #closing = new AbortController();

  private constructor(options: InferencePoolOptions, executionProvider: ExecutionProvider) {
    const workers = options.workers ?? defaultInferencePoolOptions.workers;
    if (!Number.isInteger(workers) || workers < 1) {
      throw new TasteError(ErrorCodes.CONFIG_INVALID, `workers must be a positive integer, got ${workers}`);
    }
    const maxBatchSize = options.maxBatchSize ?? defaultInferencePoolOptions.maxBatchSize;
    if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) {
      throw new TasteError(ErrorCodes.CONFIG_INVALID, `maxBatchSize must be a positive integer, got ${maxBatchSize}`);
    }
    const taskTimeoutMs = options.taskTimeoutMs ?? defaultInferencePoolOptions.taskTimeoutMs;
    if (!Number.isInteger(taskTimeoutMs) || taskTimeoutMs < 1) {
      throw new TasteError(ErrorCodes.CONFIG_INVALID, `taskTimeoutMs must be a positive integer, got ${taskTimeoutMs}`);
    }
    const respawnDelayMs = options.respawnDelayMs ?? defaultInferencePoolOptions.respawnDelayMs;
    if (!Number.isInteger(respawnDelayMs) || respawnDelayMs < 0) {
      throw new TasteError(ErrorCodes.CONFIG_INVALID, `respawnDelayMs must be a non-negative integer, got ${respawnDelayMs}`);
    }
    this.#options = {
      bundle: options.bundle,
      executionProvider,
      providerLibraryDir: options.providerLibraryDir ?? onnxruntimeLibraryDir(),
      workers,
      intraOpThreads: options.intraOpThreads ?? Math.max(1, Math.floor((availableParallelism() - 1) / workers)),
      allowSpinning: options.allowSpinning ?? false,
      maxBatchSize,
      taskTimeoutMs,
      respawnDelayMs,
      observer: options.observer,
      createWorker: options.createWorker ?? ((url, workerOptions) => new Worker(url, workerOptions)),
    };
  }

  /** Starts the workers, loads the model in each, and checks its signature against the contract. */
  static async start(options: InferencePoolOptions): Promise<InferencePool> {
    const requested = options.executionProvider ?? defaultInferencePoolOptions.executionProvider;
    if (!ExecutionProviderChoices.includes(requested)) {
      throw new TasteError(ErrorCodes.CONFIG_INVALID, `executionProvider must be one of ${ExecutionProviderChoices.join(', ')}, got "${requested}"`);
    }
    if (requested !== 'auto') return InferencePool.#startOn(options, requested);
    const skipped: SkippedProvider[] = [];
    for (const provider of AUTO_PROVIDER_ORDER) {
      try {
        const pool = await InferencePool.#startOn(options, provider);
        options.observer?.onEvent?.({ type: 'provider-chosen', provider, skipped });
        return pool;
      } catch (error) {
        // Any failure on a GPU provider passes to the next one (a driver's errors are too many to
        // list); the CPU provider's failure is the model's own, and is the answer.
        if (provider === 'cpu') throw error;
        skipped.push({ provider, reason: error instanceof Error ? error.message : String(error) });
      }
    }
    throw new TasteError(ErrorCodes.INTERNAL, 'auto tried no execution provider');
  }

  static async #startOn(options: InferencePoolOptions, executionProvider: ExecutionProvider): Promise<InferencePool> {
    const pool = new InferencePool(options, executionProvider);
    // ONNX Runtime's own error for a missing CUDA provider says only "Failed to load shared library".
    if (executionProvider === 'cuda') await checkCudaInstalled(pool.#options.providerLibraryDir);
    try {
      await Promise.all(Array.from({ length: pool.#options.workers }, () => pool.#spawn()));
    } catch (error) {
      await pool.close();
      throw error;
    }
    pool.#setHealthy(true);
    pool.#options.observer?.onStarted?.(pool.workers);
    return pool;
  }

  /** Whether a worker is there to run inference (false once closed). */
  get healthy(): boolean {
    return this.#healthy;
  }

  /** Workers ready to run. */
  get workers(): number {
    return this.#slots.length;
  }

  get bundle(): ModelBundle {
    return this.#options.bundle;
  }

  /** The provider the sessions run on (the one `auto` chose). */
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
    this.#closing.abort();
    this.#healthy = false; // no event: closing is not an outage
    this.#rejectQueued(poolClosed());
    this.#slots.length = 0;
    const busy = [...this.#busy.values()].map((entry) => entry.done);
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(busy), new Promise((resolve) => (grace = setTimeout(resolve, CLOSE_GRACE_MS)))]);
    clearTimeout(grace);
    await Promise.all([...this.#workers].map((worker) => worker.terminate()));
    this.#workers.clear();
  }

  #run(request: WorkerRequest, transfer: ArrayBuffer[]): Promise<RunResult> {
    if (this.#closed) return Promise.reject(poolClosed());
    // Without a worker the run could only wait: fail fast, and let the caller's retry find the pool healed.
    if (!this.#healthy) return Promise.reject(poolUnavailable('no inference worker is running (replacements are being started)'));
    return new Promise((resolve, reject) => {
      const timeoutMs = this.#options.taskTimeoutMs;
      const task: Task = {
        request,
        transfer,
        resolve: (result) => {
          clearTimeout(task.timer);
          resolve(result);
        },
        reject: (error) => {
          clearTimeout(task.timer);
          reject(error);
        },
        timer: setTimeout(() => this.#timeOut(task), timeoutMs),
      };
      this.#queue.push(task);
      this.#dispatch();
    });
  }

  #timeOut(task: Task): void {
    const timeoutMs = this.#options.taskTimeoutMs;
    const queued = this.#queue.indexOf(task);
    if (queued >= 0) this.#queue.splice(queued, 1);
    const slot = this.#slots.find((candidate) => candidate.task === task);
    if (slot) {
      // The run cannot be cancelled: this worker gets no more work and a replacement starts now.
      slot.task = undefined;
      slot.abandoned = true;
      this.#slots.splice(this.#slots.indexOf(slot), 1);
      this.#lost();
    }
    this.#options.observer?.onEvent?.({ type: 'task-timed-out', timeoutMs, workerReplaced: slot !== undefined });
    task.reject(new TasteError(ErrorCodes.INFERENCE_TIMEOUT, `inference did not finish within ${timeoutMs} ms`, { canRetry: true }));
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      if (slot.task) continue;
      const task = this.#queue.shift();
      if (!task) return;
      slot.task = task;
      this.#markBusy(slot);
      slot.worker.postMessage(task.request, task.transfer);
    }
  }

  #rejectQueued(error: TasteError): void {
    for (const task of this.#queue.splice(0)) task.reject(error);
  }

  #markBusy(slot: Slot): void {
    let end = () => {};
    const done = new Promise<void>((resolve) => (end = resolve));
    slot.busy = { done, end };
    this.#busy.set(slot.worker, slot.busy);
  }

  #markIdle(slot: Slot): void {
    slot.busy?.end();
    slot.busy = undefined;
    this.#busy.delete(slot.worker);
  }

  /** A worker is gone (dead or abandoned): report it, and start its replacement. */
  #lost(): void {
    this.#options.observer?.onEvent?.({ type: 'worker-exited', workersLeft: this.#slots.length });
    if (this.#slots.length === 0) this.#setHealthy(false);
    this.#missing++;
    void this.#replaceMissing();
  }

  #setHealthy(healthy: boolean): void {
    if (healthy === this.#healthy) return;
    this.#healthy = healthy;
    this.#options.observer?.onEvent?.({ type: 'health', healthy });
  }

  /** Starts the replacements owed, one at a time, waiting longer after each failure, until the pool is whole or closed. */
  async #replaceMissing(): Promise<void> {
    if (this.#respawning) return;
    this.#respawning = true;
    let delay = this.#options.respawnDelayMs;
    let attempt = 0;
    try {
      while (this.#missing > 0 && !this.#closed) {
        attempt++;
        try {
          await this.#spawn();
          this.#missing--;
          this.#options.observer?.onEvent?.({ type: 'worker-replaced', workers: this.#slots.length });
          attempt = 0;
          delay = this.#options.respawnDelayMs;
          this.#setHealthy(true);
        } catch (cause) {
          if (this.#closed) return;
          const error = cause instanceof TasteError ? cause : poolUnavailable(`a replacement inference worker failed to start`, cause);
          // Nobody is left to run what waits: tell the callers now rather than let them hang.
          if (this.#slots.length === 0) this.#rejectQueued(poolUnavailable(`no inference worker is running: ${error.message}`, error));
          this.#options.observer?.onEvent?.({ type: 'respawn-failed', error, attempt, retryInMs: delay });
          await sleep(delay, this.#closing.signal);
          delay = Math.min(Math.max(1, delay * 2), MAX_RESPAWN_DELAY_MS);
        }
      }
    } finally {
      this.#respawning = false;
    }
  }

  #spawn(): Promise<void> {
    const { bundle, executionProvider, intraOpThreads, allowSpinning, providerLibraryDir } = this.#options;
    const init: WorkerInit = { modelPath: bundle.onnxPath, executionProvider, intraOpThreads, allowSpinning };
    const worker = this.#options.createWorker(WORKER_URL, { workerData: init });
    const slot: Slot = { worker, task: undefined, busy: undefined, abandoned: false };
    this.#workers.add(worker);
    this.#markBusy(slot); // loading the model
    return new Promise((resolve, reject) => {
      let ready = false;
      const fail = (error: unknown) => {
        // A worker that will never run is ended (its load is over), not left holding a thread.
        this.#markIdle(slot);
        void worker.terminate();
        reject(error);
      };
      worker.on('message', (message: WorkerMessage) => {
        switch (message.type) {
          case 'ready':
            if (this.#closed) return fail(poolClosed());
            this.#markIdle(slot);
            try {
              validateModelSignature(message.inputs, message.outputs, bundle.metadata, bundle.onnxPath);
            } catch (error) {
              fail(error);
              return;
            }
            ready = true;
            this.#slots.push(slot);
            resolve();
            this.#dispatch();
            return;
          case 'load-failed':
            fail(sessionLoadError(executionProvider, init.modelPath, message.message, providerLibraryDir));
            return;
          case 'result':
          case 'failed': {
            this.#markIdle(slot);
            if (slot.abandoned) {
              void worker.terminate(); // idle now, so it can be ended safely
              return;
            }
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
        this.#markIdle(slot);
        if (!ready) {
          reject(new TasteError(ErrorCodes.MODEL_LOAD, 'inference worker exited before its model was loaded'));
          return;
        }
        const index = this.#slots.indexOf(slot);
        if (index >= 0) this.#slots.splice(index, 1);
        slot.task?.reject(new TasteError(ErrorCodes.INFERENCE_FAILED, 'inference worker exited', { canRetry: true }));
        slot.task = undefined;
        // A dead worker is replaced so the pool keeps its size (an abandoned one already was); a closing pool lets it go.
        if (this.#closed || slot.abandoned) return;
        this.#lost();
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

function poolUnavailable(message: string, cause?: unknown): TasteError {
  return new TasteError(ErrorCodes.INFERENCE_UNAVAILABLE, message, { cause, canRetry: true });
}
