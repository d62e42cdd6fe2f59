"""Data windows, metrics and a tiny end-to-end training run (synthetic data, no shared datasets needed)."""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "training"))

from taste_training import data as dt  # noqa: E402
from taste_training import evaluate as ev  # noqa: E402
from taste_training import features as fx  # noqa: E402


def _sim_files(tmp_path: Path, users: int = 60, items: int = 30, seed: int = 0):
    """A toy simulator output: each user walks a cycle item i -> i+1 (mod items), with searches."""
    rng = random.Random(seed)
    cat = tmp_path / "catalogue.tsv"
    cat.write_text("".join(f"taste:track:{i}\ttrack\tpop\tA{i % 5}\tT{i}\t200000\n" for i in range(items)))
    lines = []
    for u in range(users):
        t = 1_700_000_000_000 + rng.randrange(10**9)
        cur = rng.randrange(items)
        for k in range(rng.randrange(12, 40)):
            t += rng.choice([0, 1_000, 200_000, 3_600_000])
            if rng.random() < 0.15:
                lines.append({"type": "search", "userId": f"u{u}", "query": f"song T{(cur + 1) % items}",
                              "eventTimeMs": t, "clickedItemUri": rng.choice(["", f"taste:track:{(cur + 1) % items}"]),
                              "clickedItemKind": "ITEM_KIND_TRACK"})
                t += 1_000
            cur = (cur + 1) % items
            ms = rng.choice([5_000, 60_000, 200_000])
            lines.append({"type": "play", "userId": f"u{u}", "itemUri": f"taste:track:{cur}", "itemKind": "ITEM_KIND_TRACK",
                          "eventTimeMs": t, "msPlayed": ms, "itemDurationMs": 200_000, "context": "PLAY_CONTEXT_HOME",
                          "endReason": "END_REASON_USER_STOPPED"})
    rng.shuffle(lines)  # file order is not time order
    evs = tmp_path / "events.jsonl"
    evs.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return cat, evs, lines


def test_time_buckets_vectorised_matches_scalar():
    rng = np.random.default_rng(0)
    vals = np.concatenate([np.array([-5, 0, 1, 999, 1000, 1999, 2000, 4000, 2**22 * 1000, 2**22 * 1000 - 1, 10**15]),
                           rng.integers(-10**6, 10**13, size=2000)])
    assert dt.time_buckets(vals).tolist() == [fx.time_bucket(int(v)) for v in vals]


def test_window_features_match_contract_featurizer(tmp_path):
    cat, evs, lines = _sim_files(tmp_path)
    seq = dt.load_sim(cat, evs, q=8, buckets=4096)
    vocab = fx.Vocab(seq.uris)
    by_user = {}
    for i, e in enumerate(json.loads(x) for x in evs.read_text().splitlines()):
        by_user.setdefault(e["userId"], []).append({**e, "offset": i})
    for u, name in enumerate(seq.users):
        n = len(seq.items[u])
        for start, end in ((0, n), (max(0, n - 7), n), (2, min(n, 9))):
            w = dt.window_features(seq, u, start, end, 8)
            ordered = sorted(by_user[name], key=fx.order_key)[start:end]
            ref = fx.featurize_user(ordered, vocab, max_seq_len=50, q=8, buckets=4096)
            assert w["item_ids"].tolist() == ref.item_ids
            assert w["event_kinds"].tolist() == ref.event_kinds
            assert w["query_tokens"].tolist() == ref.query_tokens
            assert w["gap_buckets"].tolist() == ref.gap_buckets
            assert w["age_buckets"].tolist() == ref.age_buckets


def test_metrics_by_hand():
    m = ev.metrics_from_ranks(np.array([0, 1, 9, 10, 99]))
    assert m["HR@1"] == pytest.approx(0.2) and m["HR@10"] == pytest.approx(0.6) and m["HR@5"] == pytest.approx(0.4)
    assert m["NDCG@10"] == pytest.approx((1 + 1 / np.log2(3) + 1 / np.log2(11)) / 5)
    assert m["MRR"] == pytest.approx((1 + 1 / 2 + 1 / 10 + 1 / 11 + 1 / 100) / 5)
    scores = np.array([[0.0, 0.0, 0.5, 0.9, 0.1, 0.7]])
    assert ev.ranks_full(scores, np.array([2]), None).tolist() == [2]  # 0.9, 0.7 beat it; rows 0/1 never count
    assert ev.ranks_full(scores, np.array([2]), [np.array([3])]).tolist() == [1]  # history item masked
    assert ev.ranks_sampled(scores, np.array([2]), np.array([[4, 5]])).tolist() == [1]


def test_leave_one_out_positions():
    seq = dt.Sequences("t", ["<pad>", "<unk>", "a", "b", "c"], ["u"], [np.array([2, 3, 0, 4, 2])],
                       [np.array([1, 2, 4, 3, 1])], [None], [None])
    s = ev.leave_one_out(seq, plays_only=False)
    assert s.test_pos.tolist() == [4] and s.val_pos.tolist() == [3]
    s = ev.leave_one_out(seq, plays_only=True)  # the skipped play (kind 3) and the empty search are not targets
    assert s.test_pos.tolist() == [4] and s.val_pos.tolist() == [1]


def test_train_end_to_end_on_toy_sim(tmp_path):
    from taste_training import train

    cat, evs, _ = _sim_files(tmp_path, users=120, items=30)
    out = tmp_path / "model"
    rc = train.main(["--dataset", "sim", "--catalogue", str(cat), "--events", str(evs), "--out", str(out),
                     "--epochs", "30", "--eval-every", "5", "--dim", "16", "--max-seq-len", "20",
                     "--batch-size", "32", "--lr", "3e-3", "--dropout", "0.1", "--seed", "1"])
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    test = m["results"]["test"]
    ours = test["SASRec-style (this model)"]["full"]
    pop = test["popularity"]["full"]
    # the toy world is a deterministic cycle: the sequence model must learn it, popularity cannot
    assert ours["HR@5"] > 0.8 and ours["HR@5"] > pop["HR@5"] + 0.3, (ours, pop)
    assert m["export"]["max_abs_diff_ort_vs_torch"] <= 1e-5
    assert m["export"]["onnx_test_metrics_match"]["max_abs_diff_HR@10_NDCG@10"] == 0.0
    for f in ("model.onnx", "items.tsv", "item_embeddings.f32", "MODEL_CARD.md"):
        assert (out / f).is_file()
    card = (out / "MODEL_CARD.md").read_text()
    assert "TRAINED" in card and "UNTRAINED" not in card and "NDCG@10" in card

    # The evaluation set for `taste evaluate` reproduces the training run's test numbers from the
    # replayed events (pipeline_eval checks the replay featurizes to the training windows itself).
    from taste_training import pipeline_eval

    assert pipeline_eval.main(["--dataset", "sim", "--model", str(out), "--catalogue", str(cat), "--events", str(evs),
                               "--out", str(tmp_path / "set")]) == 0
    summary = json.loads((tmp_path / "set" / "offline.json").read_text())
    assert summary["training_run"]["full"]["HR@5"] == ours["HR@5"]
    for k in ("HR@5", "HR@10", "NDCG@10", "MRR"):
        assert abs(summary["offline"]["full"][k] - ours[k]) < 1e-9, k
    cases = [json.loads(x) for x in (tmp_path / "set" / "cases.jsonl").read_text().splitlines()]
    events = [json.loads(x) for x in (tmp_path / "set" / "events.jsonl").read_text().splitlines()]
    assert len(cases) == summary["users"] == ours["users"]
    assert sum(c["events"] for c in cases) == len(events) == summary["events"]
    assert {e["userId"] for e in events} <= {c["userId"] for c in cases}
    assert all(c["userId"].startswith("eval-") and len(c["offlineEmbedding"]) == 16 for c in cases)
    assert summary["mask_history"] is False and all(c["mask"] == [] for c in cases)

    # An fp16 variant keeps the contract's I/O types, gets its own version and stays close.
    from taste_training import fp16

    checks = fp16.convert(out, tmp_path / "fp16")
    assert checks["model_version"].endswith("-fp16") and checks["max_abs_diff_vs_fp32"] < 5e-3
    assert checks["onnx_bytes_fp16"] < checks["onnx_bytes_fp32"]
    assert "fp16 variant of" in (tmp_path / "fp16" / "MODEL_CARD.md").read_text()


def test_search_ablation_compares_both_arms_on_the_same_users(tmp_path):
    from taste_training import ablation, train

    cat, evs, lines = _sim_files(tmp_path, users=80, items=30)
    genres = ["pop", "rock", "jazz"]
    with open(tmp_path / "tastes.jsonl", "w") as f:
        for u in sorted({x["userId"] for x in lines}):
            f.write(json.dumps({"userId": u, "genres": {genres[int(u[1:]) % 3]: 1.0}, "vector": [int(u[1:]) % 3, 1.0]}) + "\n")
    common = ["--dataset", "sim", "--catalogue", str(cat), "--events", str(evs), "--epochs", "4", "--dim", "16",
              "--max-seq-len", "20", "--batch-size", "32", "--seed", "1"]
    assert train.main(common + ["--out", str(tmp_path / "with")]) == 0
    assert train.main(common + ["--no-searches", "--out", str(tmp_path / "plays")]) == 0
    args = argparse.Namespace(catalogue=str(cat), events=str(evs), tastes=str(tmp_path / "tastes.jsonl"),
                              with_searches=str(tmp_path / "with"), plays_only=str(tmp_path / "plays"), out=None)
    r = ablation.run(args)
    assert set(r["ranking"]) == {"with searches", "plays only", "last-item kNN", "popularity"}
    users = {name: row["all"]["users"] for name, row in r["ranking"].items()}
    assert len(set(users.values())) == 1, users  # every row ranks the same users
    assert sum(r["slices"].values()) == users["plays only"]
    for arm in ("with searches", "plays only"):
        assert set(r["cold_start_truncated"][arm]) == {f"last {n} plays" for n in ablation.TRUNCATIONS}
        rec = r["taste_recovery"][arm]["all"]
        assert 0.0 <= rec["top_genre_accuracy"] <= 1.0 and -1.0 <= rec["genre_cosine"] <= 1.0
    assert "| with searches |" in ablation.to_markdown(r)


def test_train_recent_keeps_each_users_newest_targets_and_every_input():
    from taste_training.train import HistorySet, TrainSet

    # one user of 12 plays: events 0..11; validation target 10, test 11; training targets are events 1..9
    seq = dt.Sequences("toy", ["<pad>", "<unk>"] + [f"x:{i}" for i in range(12)], ["u"],
                       [np.arange(2, 14, dtype=np.int64)], [np.full(12, 1, dtype=np.int64)],
                       [np.arange(12, dtype=np.int64) * 60_000], [None], None)
    split = ev.leave_one_out(seq)
    assert split.val_pos.tolist() == [10]
    predicted = lambda targets: sorted(int(t) for row in targets for t in row if t >= 2)  # noqa: E731
    whole = HistorySet(seq, split, q=2)
    recent = HistorySet(seq, split, q=2, recent=3)
    assert predicted(whole.targets) == list(range(3, 12))  # items of events 1..9
    assert predicted(recent.targets) == [9, 10, 11]  # events 7, 8, 9
    assert recent.n_targets == 3
    assert (recent.windows[0]["item_ids"] == whole.windows[0]["item_ids"]).all()  # the inputs are unchanged
    # windows of 4 events, stride 4: the same three targets, once each, and windows without one are left out
    windows = TrainSet(seq, split, L=4, q=2, stride=4, age="none", recent=3)
    assert predicted(windows.targets) == [9, 10, 11]
    assert len(windows) == 1
