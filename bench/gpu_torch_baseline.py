#!/usr/bin/env python3
"""The PyTorch baseline of bench/gpu.bench.ts: the training code's own module, with the weights of
the exported model.onnx, timed on the same device (bench/gpu.bench.ts runs it; docs: README, GPU).

    python bench/gpu_torch_baseline.py --model models/default --reference REF.json \
        --batches 64,256,1024 --min-ms 500 [--devices cuda]

There is no PyTorch checkpoint beside a model directory, so the module (TasteEncoder or
StatefulEncoder, configured from model.onnx's metadata and weight shapes) is filled from the
graph's initializers: by name where the exporter kept it, and, for the Linear weights it folded
into transposed MatMul constants, by order and shape. REF.json (written by gpu.bench.ts) holds a
small batch and ONNX Runtime's CPU output for it: the module must reproduce it (the report gives
the largest difference), so a weight put in the wrong place shows rather than passes silently.
Timing does not depend on the weight values.

Needs torch and numpy only (the device's own Python has them; onnx is not assumed): the
initializers are read straight from the protobuf. Prints one JSON object per line.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import struct
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Run from the repository (or its copy on the GPU machine): taste_training is imported from training/.
sys.path.insert(0, str(REPO / "training"))

FLOAT = 1  # onnx.TensorProto.FLOAT


def varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def fields(buf: bytes):
    """(field number, wire type, value) of one protobuf message; value is bytes for length-delimited."""
    pos = 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 2:
            size, pos = varint(buf, pos)
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"protobuf wire type {wire} is not used by ONNX")
        yield number, wire, value


def onnx_initializers(path: Path):
    """Name -> (dims, float32 values) of every float initializer, in graph order; and the metadata.
    ModelProto.graph = 7, metadata_props = 14; GraphProto.initializer = 5; TensorProto: dims = 1,
    data_type = 2, float_data = 4, name = 8, raw_data = 9 (onnx.proto3)."""
    import numpy as np

    tensors, metadata = {}, {}
    for number, _, value in fields(path.read_bytes()):
        if number == 14:
            entry = {n: v.decode() for n, _, v in fields(value)}
            metadata[entry.get(1, "")] = entry.get(2, "")
        if number != 7:
            continue
        for g_number, _, tensor in fields(value):
            if g_number != 5:
                continue
            dims, dtype, name, raw, floats = [], FLOAT, "", b"", []
            for t_number, t_wire, t_value in fields(tensor):
                if t_number == 1:
                    dims.extend([t_value] if t_wire == 0 else unpack_varints(t_value))
                elif t_number == 2:
                    dtype = t_value
                elif t_number == 4:
                    floats.extend(struct.unpack(f"<{len(t_value) // 4}f", t_value) if t_wire == 2 else [struct.unpack("<f", t_value)[0]])
                elif t_number == 8:
                    name = t_value.decode()
                elif t_number == 9:
                    raw = t_value
            if dtype != FLOAT:
                continue
            data = np.frombuffer(raw, dtype="<f4").copy() if raw else np.asarray(floats, dtype=np.float32)
            tensors[name] = data.reshape(dims)
    return tensors, metadata


def unpack_varints(buf: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(buf):
        value, pos = varint(buf, pos)
        out.append(value)
    return out


def build_module(tensors: dict, metadata: dict):
    """The training module of the graph's kind, configured from its metadata and weight shapes."""
    from taste_training.model import ModelConfig, TasteEncoder
    from taste_training.stateful import StatefulConfig, StatefulEncoder

    num_items, dim = tensors["item_emb.weight"].shape
    layers = len({name.split(".")[1] for name in tensors if name.startswith("blocks.")})
    ffn_mult = tensors["blocks.0.ffn.0.bias"].shape[0] // dim
    common = dict(num_items=num_items, dim=dim, layers=layers, query_tokens=int(metadata["taste.query_tokens"]),
                  query_buckets=int(metadata["taste.query_buckets"]), dropout=0.0, ffn_mult=ffn_mult)
    if metadata.get("taste.model_kind") == "stateful":
        config = StatefulConfig(**common, state_size=tensors["blocks.0.lru.nu_log"].shape[0],
                                max_step_events=int(metadata["taste.max_step_events"]),
                                tail_events=int(metadata["taste.tail_events"]))
        return StatefulEncoder(config), "stateful"
    relative = "blocks.0.rel_bias.weight" in tensors
    heads = tensors["blocks.0.rel_bias.weight"].shape[1] if relative else 2
    config = ModelConfig(**common, heads=heads, max_seq_len=int(metadata["taste.max_seq_len"]),
                         pos_mode="relative" if relative else "newest")
    return TasteEncoder(config), "windowed"


def load_weights(module, tensors: dict) -> list[str]:
    """Fills `module` from the initializers; returns the parameters no initializer matched."""
    import torch

    state = module.state_dict()
    folded = [name for name in tensors if name not in state]  # the exporter's transposed MatMul weights
    unmatched = []
    for key, value in state.items():
        if key in tensors and tuple(tensors[key].shape) == tuple(value.shape):
            state[key] = torch.from_numpy(tensors[key])
            continue
        match = next((name for name in folded if value.dim() == 2 and tuple(tensors[name].shape) == tuple(value.shape[::-1])), None)
        if match is None:
            unmatched.append(key)
            continue
        folded.remove(match)
        state[key] = torch.from_numpy(tensors[match].T.copy())
    module.load_state_dict(state)
    module.eval()
    return unmatched


def feeds_of(reference: dict, names: list[str], batch: int, device: str):
    """The reference batch's inputs, rows repeated up to `batch`."""
    import numpy as np
    import torch

    out = []
    for name in names:
        entry = reference["feeds"][name]
        array = np.asarray(entry["data"], dtype=np.float32 if entry["type"] == "float32" else np.int64).reshape(entry["dims"])
        reps = math.ceil(batch / array.shape[0])
        array = np.concatenate([array] * reps, axis=0)[:batch]
        out.append(torch.from_numpy(np.ascontiguousarray(array)).to(device))
    return out


STEP_INPUTS = ["state", "item_ids", "event_kinds", "query_tokens", "gap_buckets", "checkpoint_at"]
WINDOW_INPUTS = ["item_ids", "event_kinds", "query_tokens", "gap_buckets", "age_buckets"]


def embedding_of(kind: str, outputs):
    return outputs[1] if kind == "stateful" else outputs


def time_runs(run, sync, min_ms: float) -> list[float]:
    for _ in range(3):  # warm-up: kernel selection, allocator
        run()
    sync()
    times, start = [], time.perf_counter()
    while (time.perf_counter() - start) * 1000 < min_ms or len(times) < 5:
        began = time.perf_counter()
        run()
        sync()
        times.append((time.perf_counter() - began) * 1000)
    return times


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model directory (model.onnx)")
    parser.add_argument("--reference", required=True, help="REF.json from gpu.bench.ts: inputs and ONNX Runtime's CPU output")
    parser.add_argument("--batches", default="64,256,1024")
    parser.add_argument("--min-ms", type=float, default=500.0)
    parser.add_argument("--devices", default="cuda", help="torch devices to time, comma-separated")
    args = parser.parse_args(argv)
    base = {"model": args.model, "provider": "pytorch"}
    try:
        import numpy as np
        import torch
    except ImportError as error:
        print(json.dumps({**base, "status": "skipped", "reason": f"no PyTorch here: {error}"}))
        return 0
    tensors, metadata = onnx_initializers(Path(args.model) / "model.onnx")
    module, kind = build_module(tensors, metadata)
    unmatched = load_weights(module, tensors)
    reference = json.loads(Path(args.reference).read_text())
    names = STEP_INPUTS if kind == "stateful" else WINDOW_INPUTS
    rows = reference["feeds"][names[0]]["dims"][0]
    with torch.no_grad():
        got = embedding_of(kind, module(*feeds_of(reference, names, rows, "cpu"))).numpy()
    expected = np.asarray(reference["output"]["data"], dtype=np.float32).reshape(reference["output"]["dims"])
    check = {"maxAbsDiffVsOrtCpu": float(np.abs(got - expected).max()), "unmatchedWeights": unmatched}
    print(json.dumps({**base, "status": "weights", **check}))
    for device in args.devices.split(","):
        if device == "cuda" and not torch.cuda.is_available():
            print(json.dumps({**base, "device": device, "status": "skipped", "reason": "torch.cuda.is_available() is False: no CUDA device or driver"}))
            continue
        name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
        model = module.to(device)
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        for precision in ("fp32", "fp16"):
            if precision == "fp16" and device != "cuda":
                continue  # autocast fp16 on the CPU measures nothing a GPU user would run
            for batch in [int(b) for b in args.batches.split(",")]:
                feeds = feeds_of(reference, names, batch, device)

                def run():
                    with torch.no_grad(), torch.autocast(device_type=device, dtype=torch.float16, enabled=precision == "fp16"):
                        return model(*feeds)

                times = time_runs(run, sync, args.min_ms)
                median = statistics.median(times)
                print(json.dumps({**base, "device": device, "deviceName": name, "precision": precision, "batch": batch,
                                  "status": "ok", "msPerRun": median, "usersPerS": batch * 1000 / median}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
