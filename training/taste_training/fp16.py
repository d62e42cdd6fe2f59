"""Make an fp16 variant of an exported model directory (weights and activations in float16).

    python -m taste_training.fp16 --model <model dir> --out <dir>

The inputs (int64) and the output (`user_embedding`, float32) keep the contract's types: casts are
inserted at the graph's edges, so the pipeline loads the variant like any model. The item table
stays float32. The variant gets its own `taste.model_version` (`<version>-fp16`): its embeddings
differ from the float32 model's in the last bits, and the feature store keeps versions apart.

Meant for GPU execution providers (half the weight bytes, tensor-core math). On the CPU provider
fp16 is usually slower than fp32 (few fp16 kernels; casts around the rest). The conversion is
checked against the float32 model: max abs difference and cosine of the embeddings on random
windows, padding invariance and finiteness; the figures go into the model card.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from . import features as fx
from .export import INPUT_NAMES, OUTPUT_NAME, random_batch


def convert(model_dir: Path, out: Path, max_abs_diff: float = 5e-3) -> dict:
    import onnx
    import onnxruntime as ort
    from onnxruntime.transformers.float16 import convert_float_to_float16

    if out.resolve() == model_dir.resolve():
        raise SystemExit("--out must differ from --model")
    m = onnx.load(str(model_dir / "model.onnx"))
    meta = {p.key: p.value for p in m.metadata_props}
    if meta.get("taste.contract") != fx.CONTRACT:
        raise SystemExit(f"{model_dir}/model.onnx is not a {fx.CONTRACT} model")
    m16 = convert_float_to_float16(m, keep_io_types=True)
    version = meta["taste.model_version"] + "-fp16"
    del m16.metadata_props[:]
    for k, v in {**meta, "taste.model_version": version, "taste.precision": "fp16"}.items():
        p = m16.metadata_props.add()
        p.key, p.value = k, v
    onnx.checker.check_model(m16)
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(m16, str(out / "model.onnx"))
    for f in ("items.tsv", "item_embeddings.f32"):
        shutil.copyfile(model_dir / f, out / f)

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    ref = ort.InferenceSession(str(model_dir / "model.onnx"), so, providers=["CPUExecutionProvider"])
    half = ort.InferenceSession(str(out / "model.onnx"), so, providers=["CPUExecutionProvider"])
    n_items, q, buckets = int(meta["taste.num_items"]), int(meta["taste.query_tokens"]), int(meta["taste.query_buckets"])
    L = int(meta["taste.max_seq_len"])
    rng = np.random.default_rng(5)
    worst, cos_min = 0.0, 1.0
    for t in sorted({1, 7, L}):
        feeds = random_batch(rng, 64, t, n_items, q, buckets)
        a = ref.run([OUTPUT_NAME], {k: feeds[k] for k in INPUT_NAMES})[0]
        b = half.run([OUTPUT_NAME], {k: feeds[k] for k in INPUT_NAMES})[0]
        if b.dtype != np.float32 or not np.isfinite(b).all():
            raise SystemExit(f"fp16 output is {b.dtype} or not finite (T={t})")
        worst = max(worst, float(np.abs(a - b).max()))
        cos_min = min(cos_min, float((a * b).sum(1).min() / 1.0))
    small = random_batch(rng, 3, 10, n_items, q, buckets, lengths=[1, 4, 10])
    big = {k: np.zeros((3, L) + v.shape[2:], np.int64) for k, v in small.items()}
    for k, v in small.items():
        big[k][:, L - 10:] = v
    pad = float(np.abs(half.run([OUTPUT_NAME], small)[0] - half.run([OUTPUT_NAME], big)[0]).max())
    checks = {"max_abs_diff_vs_fp32": worst, "min_cosine_vs_fp32": cos_min, "padding_invariance_max_diff": pad,
              "onnx_bytes_fp32": (model_dir / "model.onnx").stat().st_size, "onnx_bytes_fp16": (out / "model.onnx").stat().st_size}
    if worst > max_abs_diff or pad > max_abs_diff:
        raise SystemExit(f"fp16 variant drifts too far from float32: {json.dumps(checks)}")
    card = (model_dir / "MODEL_CARD.md").read_text(encoding="utf-8") if (model_dir / "MODEL_CARD.md").exists() else ""
    note = (f"# Model card: `{version}`\n\n**fp16 variant of `{meta['taste.model_version']}`** "
            f"(`python -m taste_training.fp16 --model {model_dir} --out {out}`): weights and activations in float16, "
            "int64 inputs and float32 output as the contract says, item table unchanged (float32). Against the float32 "
            f"model on random windows (T in {{1, 7, {L}}}, 64 users each): max abs diff {worst:.2e}, min cosine "
            f"{cos_min:.6f}; padding invariance {pad:.2e}. ONNX file {checks['onnx_bytes_fp16']:,} bytes "
            f"(float32: {checks['onnx_bytes_fp32']:,}). For GPU providers; slower than float32 on the CPU provider.\n\n"
            "The float32 model's card follows.\n\n")
    (out / "MODEL_CARD.md").write_text(note + card.replace("# Model card:", "## Float32 model card:", 1), encoding="utf-8")
    return {"model_version": version, **checks}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m taste_training.fp16", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="float32 model directory")
    ap.add_argument("--out", required=True, help="where to write the fp16 model directory")
    ap.add_argument("--max-abs-diff", type=float, default=5e-3, help="refuse a variant that drifts more than this")
    args = ap.parse_args(argv)
    print(json.dumps(convert(Path(args.model), Path(args.out), args.max_abs_diff)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
