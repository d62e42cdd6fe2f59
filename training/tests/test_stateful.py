"""The stateful model kind: its recurrence against a plain loop, chunked steps against one pass, no
retroactive features, the exported step graph, and the shipped test model with its fixture."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "training"))

import torch  # noqa: E402

from taste_training import features as fx  # noqa: E402
from taste_training import stateful_export as sx  # noqa: E402
from taste_training.export import random_batch  # noqa: E402
from taste_training.stateful import StatefulConfig, StatefulEncoder, linear_scan  # noqa: E402


def tiny_model(**kw) -> StatefulEncoder:
    torch.manual_seed(4)
    cfg = StatefulConfig(num_items=60, dim=16, layers=2, state_size=8, query_tokens=4, query_buckets=64,
                         dropout=0.0, tail_events=5, max_step_events=24, **kw)
    return StatefulEncoder(cfg).eval()


def test_scan_is_the_recurrence_written_as_a_loop():
    g = torch.Generator().manual_seed(0)
    b, t, n = 2, 13, 3
    a = torch.complex(torch.rand(b, t, n, generator=g), torch.rand(b, t, n, generator=g) - 0.5) * 0.9
    u = torch.complex(torch.randn(b, t, n, generator=g), torch.randn(b, t, n, generator=g))
    A_re, A_im, h_re, h_im = linear_scan(a.real, a.imag, u.real, u.imag, levels=4)
    h = torch.zeros(b, n, dtype=torch.complex64)
    prod = torch.ones(b, n, dtype=torch.complex64)
    for i in range(t):
        h = a[:, i] * h + u[:, i]
        prod = a[:, i] * prod
        assert torch.allclose(torch.complex(h_re[:, i], h_im[:, i]), h, atol=1e-5)
        assert torch.allclose(torch.complex(A_re[:, i], A_im[:, i]), prod, atol=1e-5)


def test_direct_form_equals_scan_from_any_state():
    model = tiny_model()
    rng = np.random.default_rng(1)
    ev = random_batch(rng, 3, 20, 60, 4, 64)
    feeds = sx.step_feeds((rng.standard_normal((3, model.cfg.state_dim)) * 0.5).astype(np.float32), ev,
                          np.array([0, 3, 20]))
    x = [torch.from_numpy(feeds[k]) for k in sx.STEP_INPUTS]
    with torch.no_grad():
        scan = model.step(*x)
        direct = model(*x)
    for s, d in zip(scan, direct):
        assert torch.allclose(s, d, atol=1e-5)


def test_steps_of_any_size_equal_one_pass():
    model = tiny_model()
    rng = np.random.default_rng(2)
    hist = random_batch(rng, 1, 40, 60, 4, 64, lengths=[40])
    x = {k: torch.from_numpy(v) for k, v in hist.items()}
    with torch.no_grad():
        one_pass = model.hidden(*[x[k] for k in sx.EVENT_INPUTS])[:, -1]
        for size in (1, 3, 7, 40):
            state = model.zero_state(1)
            for s in range(0, 40, size):
                part = [x[k][:, s:s + size] for k in sx.EVENT_INPUTS]
                state, emb = model(state, *part, torch.tensor([part[0].shape[1]]))
            assert torch.allclose(emb, one_pass, atol=1e-5), size


def test_with_a_local_read_out_steps_that_re_apply_the_tail_equal_one_pass():
    # the experimental read-out attends over the newest events' outputs: steps as the pipeline makes
    # them (checkpoint + stored tail + new events) must still give the one-pass embedding
    model = tiny_model(readout_window=5)
    tail_events = model.cfg.tail_events
    rng = np.random.default_rng(5)
    hist = random_batch(rng, 1, 40, 60, 4, 64, lengths=[40])
    x = [torch.from_numpy(hist[k]) for k in sx.EVENT_INPUTS]
    with torch.no_grad():
        one_pass = model.hidden(*x)[:, -1]
        for size in (1, 3, 7):
            checkpoint, start = model.zero_state(1), 0  # the checkpoint has applied events [0, start)
            for end in range(size, 40 + size, size):
                end = min(end, 40)
                part = [v[:, start:end] for v in x]
                settled = max(0, end - tail_events - start)
                checkpoint, emb = model(checkpoint, *part, torch.tensor([settled]))
                start += settled
            assert torch.allclose(emb, one_pass, atol=1e-5), size
    with pytest.raises(ValueError, match="readout_window"):
        StatefulEncoder(StatefulConfig(num_items=60, tail_events=3, readout_window=5))


def test_a_later_event_never_changes_the_output_after_an_earlier_one():
    # no retroactive features: the vector after event i is the same whatever follows it
    model = tiny_model()
    rng = np.random.default_rng(3)
    hist = random_batch(rng, 1, 30, 60, 4, 64, lengths=[30])
    x = [torch.from_numpy(hist[k]) for k in sx.EVENT_INPUTS]
    with torch.no_grad():
        full = model.hidden(*x)
        prefix = model.hidden(*[v[:, :12] for v in x])
    assert torch.allclose(full[:, :12], prefix, atol=1e-6)


def test_padding_leaves_the_state_unchanged():
    model = tiny_model()
    state = torch.randn(2, model.cfg.state_dim)
    zeros = torch.zeros(2, 6, dtype=torch.long)
    with torch.no_grad():
        ck, _ = model(state, zeros, zeros, torch.zeros(2, 6, 4, dtype=torch.long), zeros, torch.tensor([0, 0]))
    assert torch.equal(ck, state)


def test_export_checks_pass_and_metadata_names_the_kind(tmp_path):
    model = tiny_model()
    uris = [fx.PAD_URI, fx.UNK_URI] + [f"taste:track:{i}" for i in range(58)]
    res = sx.export_model_dir(model, uris, tmp_path, version="stateful-tiny", trained=False, training_data="test")
    meta = res["metadata"]
    assert meta["taste.model_kind"] == "stateful"
    assert int(meta["taste.state_dim"]) == model.cfg.state_dim
    assert res["checks"]["chunked_vs_one_pass_max_diff"] <= 1e-5
    assert "taste.max_seq_len" not in meta


def test_applied_order_places_late_events_by_the_rule():
    ev = lambda t, o: {"eventTimeMs": t, "stream": 0, "partition": 0, "offset": o}  # noqa: E731
    # tail of 2: after [10, 20, 30] the checkpoint holds 10; a late 15 fits after it, a late 5 does not
    order, tail = sx.applied_order([[ev(10, 0), ev(20, 1), ev(30, 2)], [ev(15, 3)], [ev(5, 4)]], 2)
    assert [e["eventTimeMs"] for e in order] == [10, 15, 5, 20, 30]
    assert [e["eventTimeMs"] for e in tail] == [20, 30]


def test_the_shipped_test_model_belongs_to_its_fixture():
    fixture = json.loads((ROOT / "model/testdata/stateful-parity.json").read_text())
    enc = sx.OnnxStepEncoder(ROOT / fixture["model_dir"] / "model.onnx", threads=1)
    assert enc.meta["taste.model_version"] == fixture["model_version"]
    q = int(enc.meta["taste.query_tokens"])
    for case in fixture["cases"]:
        order, _ = sx.applied_order(case["arrivals"], fixture["tail_events"])
        feats = sx.events_features(order, q)
        got = enc.embed_histories([feats], q, chunk=7)[0]
        assert np.abs(got - np.array(case["user_embedding"], np.float32)).max() <= fixture["atol"], case["name"]
