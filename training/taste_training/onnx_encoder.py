"""An exported model directory's encoder under onnxruntime (CPU): its contract metadata, and the
embeddings of feature windows, batched as the training code batches them."""

from __future__ import annotations

import os

import numpy as np

from . import data as dt
from .export import INPUT_NAMES, OUTPUT_NAME


class OnnxEncoder:
    def __init__(self, onnx_path: str | os.PathLike, threads: int | None = None, session=None):
        """A new CPU session for onnx_path, or `session` (an open one) as it is."""
        import onnxruntime as ort

        if session is None:
            so = ort.SessionOptions()
            if threads is not None:
                so.intra_op_num_threads = threads
            session = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
        self.session = session
        self.meta: dict[str, str] = self.session.get_modelmeta().custom_metadata_map

    def embed(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """user_embedding of a collated (left-padded) batch."""
        return self.session.run([OUTPUT_NAME], {k: batch[k] for k in INPUT_NAMES})[0]

    def embed_windows(self, windows: list[dict], q: int, batch_size: int = 256) -> np.ndarray:
        """One embedding per window, `batch_size` windows per run."""
        return np.concatenate([self.embed(dt.collate(windows[i:i + batch_size], q))
                               for i in range(0, len(windows), batch_size)])
