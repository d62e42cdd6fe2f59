import ort from 'onnxruntime-node';
import type { SequenceBatch, StepBatch } from './features.js';

// The graphs' inputs as ONNX Runtime tensors, named as the contract names them
// (docs/model-contract.md): one place for the worker and the benchmarks.

/** A windowed model's feeds. */
export function windowFeeds(batch: SequenceBatch): Record<string, ort.Tensor> {
  const { batchSize: b, timeSteps: t, queryTokens: q } = batch;
  return {
    item_ids: new ort.Tensor('int64', batch.itemIds, [b, t]),
    event_kinds: new ort.Tensor('int64', batch.eventKinds, [b, t]),
    query_tokens: new ort.Tensor('int64', batch.queryTokenIds, [b, t, q]),
    gap_buckets: new ort.Tensor('int64', batch.gapBuckets, [b, t]),
    age_buckets: new ort.Tensor('int64', batch.ageBuckets, [b, t]),
  };
}

/** A stateful model's step feeds. */
export function stepFeeds(batch: StepBatch): Record<string, ort.Tensor> {
  const { batchSize: b, timeSteps: t, queryTokens: q, stateDim: s } = batch;
  return {
    state: new ort.Tensor('float32', batch.state, [b, s]),
    item_ids: new ort.Tensor('int64', batch.itemIds, [b, t]),
    event_kinds: new ort.Tensor('int64', batch.eventKinds, [b, t]),
    query_tokens: new ort.Tensor('int64', batch.queryTokenIds, [b, t, q]),
    gap_buckets: new ort.Tensor('int64', batch.gapBuckets, [b, t]),
    checkpoint_at: new ort.Tensor('int64', batch.checkpointAt, [b]),
  };
}
