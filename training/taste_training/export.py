"""Export a TasteEncoder as a `taste.model.v1` model directory (docs/model-contract.md).

    python -m taste_training.export --items <items.tsv | catalogue.tsv> --out models/<name> \
        [--checkpoint ckpt.pt | --untrained --seed 7] [--version V] [--training-data TEXT]

Writes model.onnx (opset 17, dynamic batch/time axes, contract metadata), items.tsv,
item_embeddings.f32 and MODEL_CARD.md, then verifies the ONNX model with onnxruntime against
PyTorch (values, NaN, padding invariance) and fails loudly if anything is off.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import io
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from . import features as fx
from .model import ModelConfig, TasteEncoder, add_shape_arguments

OPSET = 17
INPUT_NAMES = ["item_ids", "event_kinds", "query_tokens", "gap_buckets", "age_buckets"]
OUTPUT_NAME = "user_embedding"


# --------------------------------------------------------------------------- vocabulary files
def read_vocab_file(path: str | os.PathLike) -> list[str]:
    """items.tsv (starts with <pad>, <unk>) or a simulator catalogue TSV
    (`uri\\tkind\\tgenre\\tartist\\ttitle\\tdurationMs`, no header) → the full vocabulary list."""
    with open(path, encoding="utf-8") as f:
        lines = [ln.rstrip("\n").rstrip("\r") for ln in f]
    lines = [ln for ln in lines if ln.strip() != ""]
    if lines[:2] == [fx.PAD_URI, fx.UNK_URI]:
        uris = lines
    else:
        uris = [fx.PAD_URI, fx.UNK_URI] + [ln.split("\t", 1)[0] for ln in lines]
    fx.Vocab(uris)  # validates (reserved first lines, no duplicates)
    return uris


# --------------------------------------------------------------------------- random features
def random_batch(rng: np.random.Generator, batch: int, t: int, num_items: int, q: int, buckets: int,
                 lengths: list[int] | None = None) -> dict[str, np.ndarray]:
    """Random but well-formed left-padded inputs (each row has 1..t real events unless lengths given)."""
    out = {
        "item_ids": np.zeros((batch, t), np.int64),
        "event_kinds": np.zeros((batch, t), np.int64),
        "query_tokens": np.zeros((batch, t, q), np.int64),
        "gap_buckets": np.zeros((batch, t), np.int64),
        "age_buckets": np.zeros((batch, t), np.int64),
    }
    for b in range(batch):
        n = lengths[b] if lengths is not None else int(rng.integers(1, t + 1))
        s = t - n
        kinds = rng.integers(1, fx.NUM_EVENT_KINDS, size=n)
        out["event_kinds"][b, s:] = kinds
        out["item_ids"][b, s:] = rng.integers(0, num_items, size=n)
        for i, k in enumerate(kinds):
            if k == fx.KIND_SEARCH:
                nt = int(rng.integers(0, q + 1))
                out["query_tokens"][b, s + i, :nt] = rng.integers(1, buckets, size=nt)
        out["gap_buckets"][b, s:] = rng.integers(1, fx.MAX_BUCKET + 1, size=n)
        out["age_buckets"][b, s:] = rng.integers(1, fx.MAX_BUCKET + 1, size=n)
    return out


def torch_embed(model: TasteEncoder, feeds: dict[str, np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        return model(*[torch.from_numpy(feeds[k]) for k in INPUT_NAMES]).numpy()


# --------------------------------------------------------------------------- export
def model_version_for(model: TasteEncoder, prefix: str, uris: list[str] | None = None) -> str:
    """<prefix>-<date>-<first 8 hex of sha256 over the weights and the vocabulary>."""
    h = hashlib.sha256()
    for u in uris or []:
        h.update(u.encode("utf-8") + b"\n")
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().numpy().tobytes())
    return f"{prefix}-{_dt.date.today().isoformat()}-{h.hexdigest()[:8]}"


def export_onnx(model: TasteEncoder, path: str | os.PathLike, metadata: dict[str, str]) -> None:
    import onnx

    cfg = model.cfg
    model.eval()
    # The graph sums query-token rows without masking (TasteEncoder.embed): right only while <pad>'s row is 0.
    if model.query_emb.weight[0].abs().max().item() != 0.0:
        raise ValueError("query_emb row 0 (<pad>) is not zero: the exported query pooling would count it")
    rng = np.random.default_rng(0)
    ex = random_batch(rng, 2, 5, cfg.num_items, cfg.query_tokens, cfg.query_buckets)
    args = tuple(torch.from_numpy(ex[k]) for k in INPUT_NAMES)
    dyn = {k: {0: "batch", 1: "time"} for k in INPUT_NAMES}
    dyn[OUTPUT_NAME] = {0: "batch"}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, args, buf, input_names=INPUT_NAMES, output_names=[OUTPUT_NAME],
            dynamic_axes=dyn, opset_version=OPSET, dynamo=False, do_constant_folding=True,
        )
    m = onnx.load_from_string(buf.getvalue())
    del m.metadata_props[:]
    for k, v in metadata.items():
        p = m.metadata_props.add()
        p.key, p.value = k, str(v)
    # the exporter names the output's last axis symbolically; it is fixed to D
    out_dims = m.graph.output[0].type.tensor_type.shape.dim
    out_dims[0].dim_param = "batch"
    out_dims[1].Clear()
    out_dims[1].dim_value = cfg.dim
    m.producer_name = "taste_training"
    m.doc_string = "taste user encoder (taste.model.v1); see MODEL_CARD.md"
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, str(path))


def contract_metadata(cfg: ModelConfig, version: str, trained: bool, training_data: str) -> dict[str, str]:
    return {
        "taste.contract": fx.CONTRACT,
        "taste.features": fx.FEATURES,
        "taste.model_version": version,
        "taste.embedding_dim": str(cfg.dim),
        "taste.max_seq_len": str(cfg.max_seq_len),
        "taste.query_tokens": str(cfg.query_tokens),
        "taste.query_buckets": str(cfg.query_buckets),
        "taste.num_items": str(cfg.num_items),
        "taste.trained": "true" if trained else "false",
        "taste.training_data": training_data,
    }


# --------------------------------------------------------------------------- verification
def verify(model_dir: str | os.PathLike, model: TasteEncoder, atol: float = 1e-5) -> dict:
    """ORT vs PyTorch, NaN check, padding invariance. Raises AssertionError on failure."""
    import onnxruntime as ort

    model.eval()
    cfg = model.cfg
    d = Path(model_dir)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(d / "model.onnx"), so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(123)
    worst = 0.0
    for t in sorted({1, 7, min(50, cfg.max_seq_len), cfg.max_seq_len}):
        for b in (1, 3):
            feeds = random_batch(rng, b, t, cfg.num_items, cfg.query_tokens, cfg.query_buckets)
            got = sess.run([OUTPUT_NAME], feeds)[0]
            want = torch_embed(model, feeds)
            assert got.shape == (b, cfg.dim) and got.dtype == np.float32, got.shape
            assert np.isfinite(got).all(), f"NaN/inf in ORT output (T={t}, B={b})"
            diff = float(np.abs(got - want).max())
            worst = max(worst, diff)
            assert diff <= atol, f"ORT vs torch max abs diff {diff} > {atol} (T={t}, B={b})"
            norms = np.linalg.norm(got, axis=1)
            assert np.allclose(norms, 1.0, atol=1e-4), norms
    # padding invariance: the same users padded to T=10 and to T=max_seq_len
    tl = max(10, cfg.max_seq_len)
    small = random_batch(rng, 3, 10, cfg.num_items, cfg.query_tokens, cfg.query_buckets, lengths=[1, 4, 10])
    big = {k: np.zeros((3, tl) + v.shape[2:], np.int64) for k, v in small.items()}
    for k, v in small.items():
        big[k][:, tl - 10:] = v
    a = sess.run([OUTPUT_NAME], small)[0]
    c = sess.run([OUTPUT_NAME], big)[0]
    pad_diff = float(np.abs(a - c).max())
    assert pad_diff <= atol, f"padding changes the output by {pad_diff} (T=10 vs T={tl})"
    # a fully padded row must not produce NaN, nor disturb the other rows
    allpad = {k: v.copy() for k, v in small.items()}
    for k in allpad:
        allpad[k][0] = 0
    e = sess.run([OUTPUT_NAME], allpad)[0]
    assert np.isfinite(e).all(), "fully padded row gives NaN"
    assert float(np.abs(e[1:] - a[1:]).max()) <= atol
    # the item table
    table = np.fromfile(d / "item_embeddings.f32", dtype="<f4")
    assert table.size == cfg.num_items * cfg.dim, (table.size, cfg.num_items, cfg.dim)
    table = table.reshape(cfg.num_items, cfg.dim)
    assert not table[:2].any(), "rows 0 and 1 of the item table must be zero"
    with open(d / "items.tsv", encoding="utf-8") as f:
        n_lines = sum(1 for _ in f)
    assert n_lines == cfg.num_items, (n_lines, cfg.num_items)
    return {"max_abs_diff_ort_vs_torch": worst, "padding_invariance_max_diff": pad_diff}


# --------------------------------------------------------------------------- model directory
def _fmt_metrics(metrics: dict | None) -> str:
    if not metrics:
        return "None: this model was not evaluated.\n"
    lines = []
    for section, rows in metrics.items():
        if not isinstance(rows, dict) or not rows or not all(isinstance(v, dict) for v in rows.values()):
            continue
        cols = sorted({c for r in rows.values() for c in r})
        lines.append(f"**{section}**\n")
        lines.append("| model | " + " | ".join(cols) + " |")
        lines.append("|---|" + "---|" * len(cols))
        for name, r in rows.items():
            lines.append(f"| {name} | " + " | ".join(
                f"{r[c]:.4f}" if isinstance(r.get(c), float) else str(r.get(c, "")) for c in cols) + " |")
        lines.append("")
    return "\n".join(lines) + "\n" if lines else "```json\n" + json.dumps(metrics, indent=2) + "\n```\n"


def write_model_card(path: Path, meta: dict[str, str], cfg: ModelConfig, trained: bool, training: dict | None,
                     metrics: dict | None, checks: dict, command: str) -> None:
    status = (
        "**TRAINED.**" if trained else
        "**UNTRAINED: the weights are random (seeded). Its embeddings carry no information about "
        "taste; use it only to exercise the pipeline (contract, shapes, speed), never for ranking quality.**"
    )
    md = [
        f"# Model card: `{meta['taste.model_version']}`",
        "",
        status,
        "",
        "## What it is",
        f"- Contract `{meta['taste.contract']}`, features `{meta['taste.features']}` (docs/model-contract.md).",
        f"- SASRec-style causal transformer encoder (pre-LN, {cfg.layers} layers, {cfg.heads} heads, D={cfg.dim}), "
        "inputs: item id, event kind, mean of hashed query-token embeddings, gap bucket"
        + (", age bucket" if cfg.use_age else " (the age_buckets input is accepted but its embedding is fixed at 0)")
        + (", position embedding counted from the newest event" if cfg.pos_mode == "newest"
           else "; order enters as a learned per-head attention bias by distance between events")
        + ". Output: L2-normalised vector at the newest position.",
        f"- Item table tied with the input item embedding: `item_embeddings.f32` is {cfg.num_items} x {cfg.dim} "
        "float32 LE; rows 0 (`<pad>`) and 1 (`<unk>`) are zero. `score = user_embedding · item_row`.",
        f"- max_seq_len={cfg.max_seq_len}, Q={cfg.query_tokens}, query buckets={cfg.query_buckets}, "
        f"num_items={cfg.num_items}.",
        "",
        "## Data",
        meta["taste.training_data"],
        "",
        "## Training",
        ("```json\n" + json.dumps(training, indent=2) + "\n```" if training else "None (untrained)."),
        "",
        "## Metrics",
        _fmt_metrics(metrics),
        "## Export checks (run at export)",
        f"- onnxruntime (CPU) vs PyTorch, T in {{1, 7, {cfg.max_seq_len}}}, batch {{1, 3}}: max abs diff "
        f"{checks.get('max_abs_diff_ort_vs_torch', float('nan')):.2e}; no NaN; outputs unit-norm.",
        f"- Padding invariance (T=10 vs T={max(10, cfg.max_seq_len)}): max diff "
        f"{checks.get('padding_invariance_max_diff', float('nan')):.2e}; a fully padded row gives no NaN.",
        "",
        "## Limitations",
        "- Items outside `items.tsv` map to `<unk>` (id 1) and cannot be recommended (zero row).",
        "- Windows longer than max_seq_len keep only the newest events.",
        ("- Trained offline on the data above; quality on live traffic is not measured here." if trained else
         "- Untrained: every quality number would be chance level."),
        "",
        "## Reproduce",
        "```",
        command,
        "```",
        "",
    ]
    path.write_text("\n".join(md), encoding="utf-8")


def export_model_dir(model: TasteEncoder, uris: list[str], out_dir: str | os.PathLike, *, version: str,
                     trained: bool, training_data: str, training: dict | None = None,
                     metrics: dict | None = None, command: str = "", verify_atol: float = 1e-5) -> dict:
    cfg = model.cfg
    if len(uris) != cfg.num_items:
        raise ValueError(f"vocabulary has {len(uris)} entries, model has {cfg.num_items} items")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    meta = contract_metadata(cfg, version, trained, training_data)
    if metrics:
        meta["taste.metrics"] = json.dumps(metrics, separators=(",", ":"), sort_keys=True)
    export_onnx(model, out / "model.onnx", meta)
    write_items(out, uris, model)
    checks = verify(out, model, atol=verify_atol)
    write_model_card(out / "MODEL_CARD.md", meta, cfg, trained, training, metrics, checks, command)
    return {"metadata": meta, "checks": checks}


def write_items(out: Path, uris: list[str], model) -> None:
    """items.tsv and item_embeddings.f32 of a model directory (both model kinds)."""
    with open(out / "items.tsv", "w", encoding="utf-8", newline="\n") as f:
        for u in uris:
            if "\n" in u or "\t" in u:
                raise ValueError(f"item URI with a tab or newline: {u!r}")
            f.write(u + "\n")
    model.item_table().numpy().astype("<f4").tofile(out / "item_embeddings.f32")


PARITY_DESCRIPTION = """\
Parity fixture: model inputs and the PyTorch outputs of the model directory named in model_dir
(check model_version against its taste.model_version metadata). The pipeline's onnxruntime-node
session must reproduce `user_embedding` for each case within `atol` (max abs difference).
Inputs are int64 tensors given as nested integer lists (item_ids/event_kinds/gap_buckets/age_buckets
[B][T], query_tokens [B][T][Q]), left-padded (event_kinds == 0 is padding). Case "from_events" also gives
the events (JSONL form, see feature_vectors.json) whose featurization with the model's items.tsv and
metadata gives these inputs, for an end-to-end check. Written by `python -m taste_training.export ... --parity`."""


def parity_fixture(model: TasteEncoder, uris: list[str], model_dir: str, version: str, seed: int = 11) -> dict:
    cfg = model.cfg
    rng = np.random.default_rng(seed)
    cases = []

    def add(name, feeds, events=None):
        out = torch_embed(model, feeds)
        case = {"name": name, "inputs": {k: feeds[k].tolist() for k in INPUT_NAMES}}
        if events is not None:
            case["events"] = events
        case["user_embedding"] = [[float(x) for x in row] for row in out.astype(np.float32)]
        cases.append(case)

    add("single_user_one_event", random_batch(rng, 1, 1, cfg.num_items, cfg.query_tokens, cfg.query_buckets))
    add("batch3_left_padded_T12", random_batch(rng, 3, 12, cfg.num_items, cfg.query_tokens, cfg.query_buckets,
                                               lengths=[12, 5, 1]))
    add(f"batch2_full_T{cfg.max_seq_len}", random_batch(rng, 2, cfg.max_seq_len, cfg.num_items, cfg.query_tokens,
                                                         cfg.query_buckets, lengths=[cfg.max_seq_len, 17]))
    # end to end: events -> features -> embedding
    real = uris[2:] or [fx.UNK_URI]
    t0 = 1_764_000_000_000
    ev_a = [
        {"type": "play", "userId": "parity-a", "itemUri": real[0], "itemKind": "ITEM_KIND_TRACK", "eventTimeMs": t0,
         "msPlayed": 200_000, "itemDurationMs": 200_000, "context": "PLAY_CONTEXT_PLAYLIST",
         "endReason": "END_REASON_COMPLETED"},
        {"type": "search", "userId": "parity-a", "query": "Beyoncé — Halo (live)", "eventTimeMs": t0 + 240_000,
         "clickedItemUri": real[min(7, len(real) - 1)], "clickedItemKind": "ITEM_KIND_TRACK"},
        {"type": "play", "userId": "parity-a", "itemUri": real[min(7, len(real) - 1)], "itemKind": "ITEM_KIND_TRACK",
         "eventTimeMs": t0 + 245_000, "msPlayed": 12_000, "itemDurationMs": 180_000,
         "context": "PLAY_CONTEXT_SEARCH", "endReason": "END_REASON_SKIPPED_FORWARD"},
        {"type": "play", "userId": "parity-a", "itemUri": "taste:track:not-in-vocab", "itemKind": "ITEM_KIND_TRACK",
         "eventTimeMs": t0 + 3_600_000, "msPlayed": 60_000, "itemDurationMs": 200_000,
         "context": "PLAY_CONTEXT_RADIO", "endReason": "END_REASON_USER_STOPPED"},
    ]
    ev_b = [
        {"type": "play", "userId": "parity-b", "itemUri": real[(5 * i) % len(real)], "itemKind": "ITEM_KIND_TRACK",
         "eventTimeMs": t0 + i * 200_000, "msPlayed": 150_000, "itemDurationMs": 200_000,
         "context": "PLAY_CONTEXT_ALBUM", "endReason": "END_REASON_USER_STOPPED"}
        for i in range(cfg.max_seq_len + 5)
    ]
    ev_c = [{"type": "search", "userId": "parity-c", "query": "sleep", "eventTimeMs": t0, "clickedItemUri": "",
             "clickedItemKind": "ITEM_KIND_UNSPECIFIED"}]
    users = [ev_a, ev_b, ev_c]
    feeds = fx.to_numpy(fx.featurize_batch(users, fx.Vocab(uris), cfg.max_seq_len, cfg.query_tokens,
                                           cfg.query_buckets))
    add("from_events", feeds, events=users)
    return {
        "description": PARITY_DESCRIPTION,
        "model_dir": model_dir,
        "model_version": version,
        "atol": 1e-4,
        "embedding_dim": cfg.dim,
        "cases": cases,
    }


def write_parity(path: str | os.PathLike, fixture: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    from .jsonfmt import dumps

    Path(path).write_text(dumps(fixture) + "\n", encoding="utf-8")


REPO_ROOT = Path(__file__).resolve().parents[2]


def repo_relative(p: str | os.PathLike) -> str:
    try:
        return Path(os.path.abspath(p)).relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(p)


def reproduce_command(module: str, argv: list[str] | None) -> str:
    """The command line that produced an artifact, runnable from the repository root."""
    import shlex

    args = argv if argv is not None else sys.argv[1:]
    cwd = repo_relative(os.getcwd())
    prefix = f"cd {shlex.quote(cwd)} && " if cwd not in ("", ".") and not os.path.isabs(cwd) else ""
    if os.path.isabs(cwd):
        prefix = f"cd {shlex.quote(cwd)} && "
    py = os.path.relpath(REPO_ROOT / "training" / ".venv" / "bin" / "python", os.getcwd())
    return prefix + f"{py} -m {module} " + " ".join(shlex.quote(x) for x in args)


def load_checkpoint(path: str | os.PathLike) -> tuple[TasteEncoder, dict]:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    model = TasteEncoder(ModelConfig(**ck["config"]))
    model.load_state_dict(ck["state_dict"])
    model.eval()
    return model, ck


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m taste_training.export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--items", help="items.tsv or simulator catalogue TSV")
    src.add_argument("--placeholder-items", type=int, metavar="N",
                     help="placeholder vocabulary taste:track:0 .. taste:track:N-1 (no catalogue yet)")
    ap.add_argument("--out", required=True, help="model directory to write (e.g. models/default)")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--checkpoint", help="checkpoint written by taste_training.train")
    g.add_argument("--untrained", action="store_true", help="random weights (seeded), for pipeline tests")
    ap.add_argument("--seed", type=int, default=7)
    add_shape_arguments(ap)
    ap.add_argument("--version", help="taste.model_version (default: <name>-<date>-<weights hash>)")
    ap.add_argument("--training-data", help="free text for taste.training_data")
    ap.add_argument("--parity", metavar="JSON", help="also write a parity fixture (inputs + PyTorch outputs), "
                    "e.g. model/testdata/parity.json")
    ap.add_argument("--kind", choices=["windowed", "stateful"], default="windowed",
                    help="model kind of an --untrained export (a checkpoint says its own)")
    ap.add_argument("--state-size", type=int, default=64, help="stateful: complex state channels per layer")
    ap.add_argument("--tail-events", type=int, default=8, help="stateful: events kept to re-apply late ones")
    ap.add_argument("--max-step-events", type=int, default=64, help="stateful: most events per step call")
    a = ap.parse_args(argv)

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    if a.items:
        uris = read_vocab_file(a.items)
        vocab_src = Path(a.items).name
    else:
        uris = [fx.PAD_URI, fx.UNK_URI] + [f"taste:track:{i}" for i in range(a.placeholder_items)]
        vocab_src = f"a placeholder vocabulary taste:track:0 .. taste:track:{a.placeholder_items - 1} (no catalogue)"
    name = Path(a.out).name
    metrics = training = None
    if a.untrained and a.kind == "stateful":
        return export_untrained_stateful(a, uris, vocab_src, name, argv)
    if a.untrained:
        torch.manual_seed(a.seed)
        cfg = ModelConfig(num_items=len(uris), dim=a.dim, layers=a.layers, heads=a.heads,
                          max_seq_len=a.max_seq_len, query_tokens=a.query_tokens, query_buckets=a.query_buckets)
        model = TasteEncoder(cfg).eval()
        trained = False
        data = a.training_data or f"none (untrained, random init seed={a.seed}); vocabulary: {vocab_src}"
        prefix = f"{name}-untrained"
    else:
        model, ck = load_checkpoint(a.checkpoint)
        if model.cfg.num_items != len(uris):
            ap.error(f"checkpoint has {model.cfg.num_items} items but the vocabulary has {len(uris)}")
        trained = True
        data = a.training_data or ck.get("training_data", "unknown")
        metrics = ck.get("metrics")
        training = ck.get("training")
        prefix = name
    version = a.version or model_version_for(model, prefix, uris)
    cmd = reproduce_command("taste_training.export", argv)
    res = export_model_dir(model, uris, a.out, version=version, trained=trained, training_data=data,
                           training=training, metrics=metrics, command=cmd)
    if a.parity:
        write_parity(a.parity, parity_fixture(model, uris, repo_relative(a.out), version))
    print(json.dumps({"out": str(a.out), "model_version": version, **res["checks"]}, indent=2))
    return 0


def export_untrained_stateful(a, uris: list[str], vocab_src: str, name: str, argv) -> int:
    from .stateful import StatefulConfig, StatefulEncoder
    from .stateful_export import export_model_dir as export_stateful_dir
    from .stateful_export import step_fixture

    torch.manual_seed(a.seed)
    cfg = StatefulConfig(num_items=len(uris), dim=a.dim, layers=a.layers, state_size=a.state_size,
                         query_tokens=a.query_tokens, query_buckets=a.query_buckets, tail_events=a.tail_events,
                         max_step_events=a.max_step_events)
    model = StatefulEncoder(cfg).eval()
    version = a.version or model_version_for(model, f"{name}-untrained", uris)
    data = a.training_data or f"none (untrained, random init seed={a.seed}); vocabulary: {vocab_src}"
    res = export_stateful_dir(model, uris, a.out, version=version, trained=False, training_data=data,
                              command=reproduce_command("taste_training.export", argv))
    if a.parity:
        write_parity(a.parity, step_fixture(model, repo_relative(a.out), version))
    print(json.dumps({"out": str(a.out), "model_version": version, **res["checks"]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
