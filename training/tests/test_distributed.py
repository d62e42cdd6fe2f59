"""Training under torchrun with 2 CPU processes (gloo) against the same config in 1 process: the same
ONNX contract, metrics within seed noise, one process writing the export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "training" / "tests"))

from test_train import _sim_files  # noqa: E402

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

# Runs the trainer after installing an audit hook that lists every file (and folder) this process
# opens for writing or creates under the output folder: who wrote what, seen from outside the trainer.
AUDITED_TRAIN = r'''
import os, runpy, sys

out, log_dir = os.path.realpath(sys.argv[1]), sys.argv[2]
sys.argv = ["taste_training.train"] + sys.argv[3:]
log = open(os.path.join(log_dir, f"writes-rank{os.environ.get('RANK', 'none')}-pid{os.getpid()}.txt"), "w")


def under_out(path):
    return isinstance(path, (str, bytes, os.PathLike)) and os.path.realpath(os.fsdecode(path)).startswith(out)


def hook(event, args):
    if event == "open" and under_out(args[0]):
        mode, flags = args[1], args[2]
        if (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)):
            log.write(os.path.relpath(os.fsdecode(args[0]), out) + "\n")
            log.flush()
    elif event in ("os.mkdir", "os.rename", "os.replace") and under_out(args[0]):
        log.write(f"{event} {os.fsdecode(args[0])}\n")
        log.flush()


sys.addaudithook(hook)
runpy.run_module("taste_training.train", run_name="__main__")
'''

# Seed noise of this config in 1 process (test full ranking, 120 users), seeds 1/2/3:
#   windowed NDCG@10 0.356 / 0.271 / 0.289 (range 0.085), HR@10 0.658 / 0.550 / 0.567 (range 0.108)
#   stateful NDCG@10 0.286 / 0.323 / 0.254 (range 0.069), HR@10 0.542 / 0.650 / 0.508 (range 0.142)
# 2 processes, same seeds, differed from 1 process by at most 0.018 NDCG@10 and 0.025 HR@10 (their
# initial weights and batches are the same; dropout masks and the per-rank loss averaging are not).
# The tolerance sits below the seed range, so a run that learns less than any seed would fails it.
TOLERANCE = {"NDCG@10": 0.05, "HR@10": 0.08}
RESULT_ROW = {"windowed": "SASRec-style (this model)", "stateful": "LRU stateful (this model)"}


def run_training(tmp_path: Path, name: str, nproc: int, args: list[str]) -> tuple[Path, dict[str, set[str]]]:
    out, logs = tmp_path / name, tmp_path / f"{name}-writes"
    logs.mkdir()
    script = tmp_path / "audited_train.py"
    script.write_text(AUDITED_TRAIN)
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc)]
                if nproc > 1 else [sys.executable])
    env = {**os.environ, "PYTHONPATH": str(ROOT / "training"), "OMP_NUM_THREADS": "1"}
    p = subprocess.run(launcher + [str(script), str(out), str(logs)] + args, env=env, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    writes = {f.name: set(f.read_text().splitlines()) for f in logs.iterdir()}
    return out, writes


def contract(model_dir: Path) -> dict:
    """What a consumer of model.onnx relies on, read with onnx and onnxruntime."""
    m = onnx.load(str(model_dir / "model.onnx"))

    def dims(t):
        return [d.dim_param or d.dim_value for d in t.type.tensor_type.shape.dim]

    sess = ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    return {
        "opset": sorted((o.domain, o.version) for o in m.opset_import),
        "inputs": [(t.name, t.type.tensor_type.elem_type, dims(t)) for t in m.graph.input],
        "outputs": [(t.name, t.type.tensor_type.elem_type, dims(t)) for t in m.graph.output],
        "metadata": {p.key: p.value for p in m.metadata_props},
        "ort_inputs": [(i.name, i.type, i.shape) for i in sess.get_inputs()],
        "ort_outputs": [(o.name, o.type, o.shape) for o in sess.get_outputs()],
        "ort_metadata": dict(sess.get_modelmeta().custom_metadata_map),
        "items": (model_dir / "items.tsv").read_text(),
        "item_table_bytes": (model_dir / "item_embeddings.f32").stat().st_size,
    }


def shape_of(x):
    return {k: shape_of(v) for k, v in x.items()} if isinstance(x, dict) else type(x).__name__


@pytest.mark.parametrize("kind", ["windowed", "stateful"])
def test_two_processes_train_the_same_model_contract_and_one_writes_it(tmp_path, kind):
    cat, evs, _ = _sim_files(tmp_path, users=120, items=30)
    args = ["--dataset", "sim", "--catalogue", str(cat), "--events", str(evs), "--kind", kind, "--epochs", "2",
            "--eval-every", "1", "--dim", "16", "--max-seq-len", "20", "--batch-size", "32",
            "--events-per-batch", "1024", "--state-size", "8", "--seed", "1", "--threads", "1",
            "--version", f"ddp-test-{kind}"]
    one, one_writes = run_training(tmp_path, "one", 1, args + ["--out", str(tmp_path / "one")])
    two, two_writes = run_training(tmp_path, "two", 2, args + ["--out", str(tmp_path / "two")])

    # (c) of the two ranks, rank 0 alone wrote into --out, and it wrote the whole model directory
    writers = {name: w for name, w in two_writes.items() if w}
    assert list(writers) == [next(n for n in two_writes if n.startswith("writes-rank0-"))], two_writes
    assert {"metrics.json", "model.onnx", "items.tsv", "MODEL_CARD.md"} <= next(iter(writers.values()))
    assert len(two_writes) == 2  # both ranks ran the trainer

    # (a) the same contract: names, element types, symbolic shapes, opset, metadata, vocabulary
    c1, c2 = contract(one), contract(two)
    for c in (c1, c2):  # the trained numbers differ; which numbers a model carries does not
        for meta in (c["metadata"], c["ort_metadata"]):
            meta["taste.metrics"] = shape_of(json.loads(meta["taste.metrics"]))
    for key in c1:
        assert c1[key] == c2[key], key
    assert c1["metadata"]["taste.model_version"] == f"ddp-test-{kind}"

    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert m1["distributed"]["world_size"] == 1 and m1["distributed"]["backend"].startswith("none")
    assert m2["distributed"]["world_size"] == 2 and m2["distributed"]["backend"] == "gloo"
    assert '"world_size": 2' in (two / "MODEL_CARD.md").read_text()

    # (b) the same quality within seed noise, on the same users
    r1, r2 = (m["results"]["test"][RESULT_ROW[kind]]["full"] for m in (m1, m2))
    assert r1["users"] == r2["users"] == 120
    for metric, tol in TOLERANCE.items():
        assert abs(r1[metric] - r2[metric]) <= tol, (metric, r1[metric], r2[metric])
    # both saw every training target once per epoch: the same number of epochs, losses alike
    assert [h["epoch"] for h in m1["history"]] == [h["epoch"] for h in m2["history"]] == [1, 2]
    assert abs(m1["history"][0]["loss"] - m2["history"][0]["loss"]) < 0.05 * m1["history"][0]["loss"]


def test_more_processes_than_training_histories_is_a_clear_error(tmp_path):
    cat, evs, _ = _sim_files(tmp_path, users=1, items=30)
    logs = tmp_path / "logs"
    logs.mkdir()
    script = tmp_path / "audited_train.py"
    script.write_text(AUDITED_TRAIN)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "training"), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                        str(script), str(tmp_path / "out"), str(logs), "--dataset", "sim", "--catalogue", str(cat),
                        "--events", str(evs), "--kind", "stateful", "--epochs", "1", "--dim", "16", "--state-size", "8",
                        "--threads", "1", "--out", str(tmp_path / "out")],
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode != 0
    assert "world size 2 exceeds the 1 training histories" in p.stdout + p.stderr
    assert not (tmp_path / "out").exists()
