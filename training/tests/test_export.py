"""Export round trip on a tiny vocabulary, and consistency of models/default with model/testdata/parity.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "training"))

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402

from taste_training import export as ex  # noqa: E402
from taste_training import features as fx  # noqa: E402
from taste_training.model import ModelConfig, TasteEncoder  # noqa: E402

CONTRACT_KEYS = ["taste.contract", "taste.features", "taste.model_version", "taste.embedding_dim",
                 "taste.max_seq_len", "taste.query_tokens", "taste.query_buckets", "taste.num_items",
                 "taste.trained", "taste.training_data"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(3)
    uris = [fx.PAD_URI, fx.UNK_URI] + [f"taste:track:{i}" for i in range(40)]
    cfg = ModelConfig(num_items=len(uris), dim=16, layers=2, heads=2, max_seq_len=20, query_tokens=4,
                      query_buckets=64)
    model = TasteEncoder(cfg).eval()
    out = tmp_path_factory.mktemp("tiny")
    res = ex.export_model_dir(model, uris, out, version="tiny-test", trained=False, training_data="test")
    return model, uris, out, res


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_files_and_metadata(tiny):
    model, uris, out, _ = tiny
    for f in ("model.onnx", "items.tsv", "item_embeddings.f32", "MODEL_CARD.md"):
        assert (out / f).is_file(), f
    m = onnx.load(str(out / "model.onnx"))
    meta = {p.key: p.value for p in m.metadata_props}
    for k in CONTRACT_KEYS:
        assert k in meta, k
    assert meta["taste.contract"] == "taste.model.v1" and meta["taste.features"] == "taste.features.v1"
    assert meta["taste.embedding_dim"] == "16" and meta["taste.max_seq_len"] == "20"
    assert meta["taste.query_tokens"] == "4" and meta["taste.query_buckets"] == "64"
    assert meta["taste.num_items"] == str(len(uris)) and meta["taste.trained"] == "false"
    assert max(op.version for op in m.opset_import if op.domain in ("", "ai.onnx")) >= 17
    # inputs / outputs exactly as in the contract
    ins = {i.name: i for i in m.graph.input}
    assert list(ins) == ["item_ids", "event_kinds", "query_tokens", "gap_buckets", "age_buckets"]
    for name, i in ins.items():
        assert i.type.tensor_type.elem_type == onnx.TensorProto.INT64
        dims = i.type.tensor_type.shape.dim
        assert dims[0].dim_param and dims[1].dim_param  # dynamic batch and time
        assert len(dims) == (3 if name == "query_tokens" else 2)
    assert ins["query_tokens"].type.tensor_type.shape.dim[2].dim_value == 4
    (o,) = m.graph.output
    assert o.name == "user_embedding" and o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert o.type.tensor_type.shape.dim[0].dim_param and o.type.tensor_type.shape.dim[1].dim_value == 16
    # vocabulary and item table
    assert (out / "items.tsv").read_text(encoding="utf-8").splitlines() == uris
    table = np.fromfile(out / "item_embeddings.f32", dtype="<f4").reshape(len(uris), 16)
    assert not table[:2].any()
    np.testing.assert_array_equal(table[2:], model.item_emb.weight.detach().numpy()[2:])
    assert "UNTRAINED" in (out / "MODEL_CARD.md").read_text()


def test_ort_matches_torch(tiny):
    model, uris, out, res = tiny
    assert res["checks"]["max_abs_diff_ort_vs_torch"] <= 1e-5
    sess = _session(out / "model.onnx")
    rng = np.random.default_rng(5)
    for t in (1, 7, 20, 33):  # 33 > max_seq_len: still runs (positions are clamped)
        for b in (1, 3):
            feeds = ex.random_batch(rng, b, t, len(uris), 4, 64)
            got = sess.run(["user_embedding"], feeds)[0]
            assert np.isfinite(got).all()
            np.testing.assert_allclose(got, ex.torch_embed(model, feeds), atol=1e-5, rtol=0)
            np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_padding_invariance(tiny):
    _, uris, out, res = tiny
    assert res["checks"]["padding_invariance_max_diff"] <= 1e-5
    sess = _session(out / "model.onnx")
    rng = np.random.default_rng(9)
    small = ex.random_batch(rng, 4, 10, len(uris), 4, 64, lengths=[10, 3, 1, 7])
    for T in (10, 11, 20, 50):
        big = {k: np.zeros((4, T) + v.shape[2:], np.int64) for k, v in small.items()}
        for k, v in small.items():
            big[k][:, T - 10:] = v
        a = sess.run(["user_embedding"], small)[0]
        c = sess.run(["user_embedding"], big)[0]
        np.testing.assert_allclose(a, c, atol=1e-5, rtol=0)
    # one user alone == the same user inside a batch
    alone = {k: v[1:2, -3:] for k, v in small.items()}
    np.testing.assert_allclose(sess.run(["user_embedding"], alone)[0][0], a[1], atol=1e-5, rtol=0)


def test_all_padding_row_is_finite(tiny):
    _, uris, out, _ = tiny
    sess = _session(out / "model.onnx")
    z = {k: np.zeros((2, 5) + ((4,) if k == "query_tokens" else ()), np.int64) for k in ex.INPUT_NAMES}
    assert np.isfinite(sess.run(["user_embedding"], z)[0]).all()


def test_featurized_events_run(tiny):
    model, uris, out, _ = tiny
    evs = [{"type": "play", "userId": "u", "itemUri": uris[5], "eventTimeMs": 1000 * i, "msPlayed": 40_000,
            "itemDurationMs": 200_000, "endReason": "END_REASON_USER_STOPPED"} for i in range(30)]
    evs.append({"type": "search", "userId": "u", "query": "Hello World", "eventTimeMs": 10**6,
                "clickedItemUri": ""})
    feeds = fx.to_numpy(fx.featurize_batch([evs, evs[:2]], fx.Vocab(uris), 20, 4, 64))
    got = _session(out / "model.onnx").run(["user_embedding"], feeds)[0]
    np.testing.assert_allclose(got, ex.torch_embed(model, feeds), atol=1e-5, rtol=0)


def test_vocab_file_formats(tmp_path):
    cat = tmp_path / "catalogue.tsv"
    cat.write_text("taste:track:a\ttrack\trock\tX\tT\t1000\ntaste:track:b\ttrack\tpop\tY\tU\t2000\n")
    assert ex.read_vocab_file(cat) == ["<pad>", "<unk>", "taste:track:a", "taste:track:b"]
    items = tmp_path / "items.tsv"
    items.write_text("<pad>\n<unk>\ntaste:track:a\n")
    assert ex.read_vocab_file(items) == ["<pad>", "<unk>", "taste:track:a"]
    dup = tmp_path / "dup.tsv"
    dup.write_text("a\tx\nb\tx\na\tx\n")
    with pytest.raises(ValueError):
        ex.read_vocab_file(dup)


# ----------------------------------------------------------------------------- shipped artifacts
PARITY = ROOT / "model" / "testdata" / "parity.json"
DEFAULT = ROOT / "models" / "default"


@pytest.mark.skipif(not PARITY.exists() or not DEFAULT.exists(), reason="no models/default or parity.json")
def test_default_model_matches_parity_fixture():
    p = json.loads(PARITY.read_text(encoding="utf-8"))
    m = onnx.load(str(ROOT / p["model_dir"] / "model.onnx"))
    meta = {x.key: x.value for x in m.metadata_props}
    assert meta["taste.model_version"] == p["model_version"], (
        "parity.json is stale: re-export models/default with --parity model/testdata/parity.json")
    sess = _session(ROOT / p["model_dir"] / "model.onnx")
    uris = (ROOT / p["model_dir"] / "items.tsv").read_text(encoding="utf-8").splitlines()
    assert meta["taste.num_items"] == str(len(uris))
    for c in p["cases"]:
        feeds = {k: np.asarray(v, dtype=np.int64) for k, v in c["inputs"].items()}
        got = sess.run(["user_embedding"], feeds)[0]
        np.testing.assert_allclose(got, np.asarray(c["user_embedding"], np.float32), atol=1e-5, rtol=0)
        if "events" in c:
            want = fx.featurize_batch(c["events"], fx.Vocab(uris), int(meta["taste.max_seq_len"]),
                                      int(meta["taste.query_tokens"]), int(meta["taste.query_buckets"]))
            assert want == c["inputs"]


@pytest.mark.parametrize("pos_mode,use_age", [("relative", False), ("newest", True)])
def test_model_variants_export_and_match(tmp_path, pos_mode, use_age):
    torch.manual_seed(4)
    uris = [fx.PAD_URI, fx.UNK_URI] + [f"i{i}" for i in range(30)]
    cfg = ModelConfig(num_items=len(uris), dim=16, max_seq_len=12, query_tokens=3, query_buckets=32,
                      pos_mode=pos_mode, use_age=use_age)
    model = TasteEncoder(cfg).eval()
    with torch.no_grad():  # make the position parameters matter
        for b in model.blocks:
            if b.rel_bias is not None:
                b.rel_bias.weight.normal_()
    res = ex.export_model_dir(model, uris, tmp_path, version="v", trained=False, training_data="t")
    assert res["checks"]["max_abs_diff_ort_vs_torch"] <= 1e-5
    assert res["checks"]["padding_invariance_max_diff"] <= 1e-5
    m = onnx.load(str(tmp_path / "model.onnx"))
    assert [i.name for i in m.graph.input] == ex.INPUT_NAMES  # unused-by-training inputs stay in the graph
    feeds = ex.random_batch(np.random.default_rng(1), 3, 9, len(uris), 3, 32)
    x = [torch.from_numpy(feeds[k]) for k in ex.INPUT_NAMES]
    with torch.no_grad():  # the training path (every position) agrees with the serving path at the newest
        np.testing.assert_allclose(model.hidden(*x)[:, -1].numpy(), model(*x).numpy(), atol=1e-6)
    if not use_age:
        other = dict(feeds, age_buckets=np.where(feeds["event_kinds"] > 0, 24, 0))
        np.testing.assert_allclose(ex.torch_embed(model, other), ex.torch_embed(model, feeds), atol=1e-6)


def test_export_refuses_a_nonzero_padding_query_row(tmp_path):
    # The exported query pooling sums every token slot; a non-zero <pad> row would be counted.
    cfg = ModelConfig(num_items=12, dim=8, layers=1, heads=2, max_seq_len=6, query_tokens=2, query_buckets=16)
    model = TasteEncoder(cfg)
    with torch.no_grad():
        model.query_emb.weight[0].fill_(0.5)
    with pytest.raises(ValueError, match="query_emb row 0"):
        ex.export_onnx(model, tmp_path / "model.onnx", {})
