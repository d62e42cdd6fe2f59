"""Build the evaluation set that `taste evaluate` replays through the running pipeline.

    python -m taste_training.pipeline_eval --dataset lastfm|ml-latest-small|sim --model <model dir> --out <dir>
        [--catalogue C --events E] [--users N] [--user-prefix P]

The users and targets are the training run's leave-one-out test split (same loader, same split).
For each test user it writes into <dir>:

  events.jsonl  the user's history before the held-out test target, as play/search events in the
                simulator's JSONL form (what `taste evaluate` produces to Kafka), user after user,
                each user's events in contract order
  cases.jsonl   per user: userId, the target's item id, the earlier items that full ranking masks,
                the sampled negatives (LastFM), and the offline reference: the embedding onnxruntime
                (Python) computes from the training code's window and the target's 0-based ranks
  offline.json  the offline metrics on these users, computed here from those embeddings; the metrics
                of the training run when <model>/metrics.json has them; the model version; the oldest
                event time (the consumer must accept it: `--min-event-time`)

Public datasets have plays only: each becomes a PlayEvent of 60 s with no duration and no end reason,
which the contract reads as kind 1 (play). LastFM has no timestamps: every event gets the same time,
so gap and age buckets are 1, as in training. MovieLens keeps its real rating times.

Before writing, every user's replayed events are featurized by the contract implementation
(features.py, as the pipeline does) and must give the training window's embedding (max abs diff
<= 1e-5): the replay carries the same information the model was evaluated on.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from . import data as dt
from . import evaluate as ev
from . import features as fx
from .onnx_encoder import OnnxEncoder

# LastFM (S3-Rec) has no timestamps: one fixed time for every event (2020-01-01T00:00:00Z).
LASTFM_EVENT_TIME_MS = 1_577_836_800_000
PLAY_MS = 60_000


def play_event(user_id: str, uri: str, time_ms: int) -> dict:
    return {"type": "play", "userId": user_id, "itemUri": uri, "itemKind": "ITEM_KIND_TRACK",
            "eventTimeMs": int(time_ms), "msPlayed": PLAY_MS, "itemDurationMs": 0,
            "context": "PLAY_CONTEXT_UNSPECIFIED", "endReason": "END_REASON_UNSPECIFIED"}


def history_events(seq: dt.Sequences, u: int, end: int, user_id: str, sim_events: dict | None) -> list[dict]:
    """Events [0, end) of user u as JSONL events (public datasets: synthesised plays)."""
    if sim_events is not None:
        out = []
        for e in sim_events[seq.users[u]][:end]:
            e = {k: v for k, v in e.items() if k != "offset"}
            e["userId"] = user_id
            out.append(e)
        return out
    times = seq.times_ms[u]
    return [play_event(user_id, seq.uris[int(i)], LASTFM_EVENT_TIME_MS if times is None else times[k])
            for k, i in enumerate(seq.items[u][:end])]


def training_config(model_dir: Path) -> dict:
    path = model_dir / "metrics.json"
    return json.loads(path.read_text()) if path.exists() else {}


def build(args) -> dict:
    t0 = time.time()
    model_dir = Path(args.model)
    enc = OnnxEncoder(model_dir / "model.onnx", args.threads)
    stateful = enc.meta.get("taste.model_kind") == "stateful"
    if stateful:
        from .stateful_export import OnnxStepEncoder

        enc = OnnxStepEncoder(model_dir / "model.onnx", session=enc.session)  # the session already open
    # the stateful kind reads whole histories (L = 0), as the pipeline keeps them in its state
    L = 0 if stateful else int(enc.meta["taste.max_seq_len"])
    q = int(enc.meta["taste.query_tokens"])
    buckets = int(enc.meta["taste.query_buckets"])
    version = enc.meta["taste.model_version"]
    trained = training_config(model_dir)
    age = trained.get("config", {}).get("age", "none")

    sim_events = None
    if args.dataset == "sim":
        if not (args.catalogue and args.events):
            raise SystemExit("--dataset sim needs --catalogue and --events")
        seq = dt.load_sim(args.catalogue, args.events, q, buckets)
        sim_events, _ = dt.read_sim_events(args.events)
    else:
        seq = dt.load(args.dataset)
    items_tsv = (model_dir / "items.tsv").read_text(encoding="utf-8").rstrip("\n").split("\n")
    if items_tsv != seq.uris:
        raise SystemExit(f"{model_dir}/items.tsv is not the {seq.name} vocabulary: this model was not trained on it")
    vocab = fx.Vocab(seq.uris)
    table = np.fromfile(model_dir / "item_embeddings.f32", dtype="<f4").reshape(len(seq.uris), -1)

    split = ev.leave_one_out(seq, plays_only=args.dataset == "sim")
    if args.users:
        split = ev.Split(split.users[:args.users], split.val_pos[:args.users], split.test_pos[:args.users],
                         split.eligible)
    mask_history = args.dataset != "sim"

    from .train import eval_inputs

    wins, targets, hist = eval_inputs(seq, split, "test", L, q, age)
    user_ids = [f"{args.user_prefix}{seq.users[u]}" for u in split.users]
    replay = [history_events(seq, int(u), int(p), uid, sim_events)
              for u, p, uid in zip(split.users, split.test_pos, user_ids)]

    if stateful:
        # the offline reference: steps of the pipeline's usual size, the state carried between them
        chunk = int(enc.meta["taste.tail_events"]) + 8
        emb = enc.embed_histories(wins, q, chunk=chunk)
        replayed = [{k: v[0] for k, v in fx.to_numpy(fx.featurize_batch([r], vocab, len(r), q, buckets)).items()}
                    for r in replay]
        emb_replayed = enc.embed_histories(replayed, q, chunk=chunk)
    else:
        emb = enc.embed_windows(wins, q)
        emb_replayed = np.concatenate([enc.embed(fx.to_numpy(fx.featurize_batch(replay[i:i + 256], vocab, L, q, buckets)))
                                       for i in range(0, len(replay), 256)])
    replay_diff = float(np.abs(emb - emb_replayed).max())
    if replay_diff > 1e-5:
        raise SystemExit(f"the replayed events do not reproduce the training windows (max abs diff {replay_diff:.2e})")

    scores = emb @ table.T
    rank_full = ev.ranks_full(scores, targets, hist if mask_history else None)
    offline = {"full": ev.metrics_from_ranks(rank_full)}
    rank_sampled = None
    if seq.negatives is not None:
        neg = np.stack([seq.negatives[u] for u in split.users])
        rank_sampled = ev.ranks_sampled(scores, targets, neg)
        offline["sampled"] = ev.metrics_from_ranks(rank_sampled)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n_events = 0
    with open(out / "events.jsonl", "w", encoding="utf-8") as f:
        for evs in replay:
            for e in evs:
                f.write(json.dumps(e, separators=(",", ":")) + "\n")
                n_events += 1
    with open(out / "cases.jsonl", "w", encoding="utf-8") as f:
        for b, u in enumerate(split.users):
            case = {"userId": user_ids[b], "events": len(replay[b]), "target": int(targets[b]),
                    "mask": sorted({int(x) for x in hist[b] if x >= 2 and x != targets[b]}) if mask_history else [],
                    "negatives": [int(x) for x in seq.negatives[int(u)]] if seq.negatives is not None else [],
                    "offlineRankFull": int(rank_full[b]),
                    "offlineRankSampled": int(rank_sampled[b]) if rank_sampled is not None else None,
                    "offlineEmbedding": [float(x) for x in emb[b]]}
            f.write(json.dumps(case, separators=(",", ":")) + "\n")
    oldest = min((int(e["eventTimeMs"]) for evs in replay for e in evs), default=0)
    training_metrics = None
    if not args.users and trained.get("export", {}).get("model_version") == version:
        training_metrics = next((r for k, r in trained["results"]["test"].items() if k.endswith("(this model)")), None)
    summary = {
        "dataset": seq.name,
        "description": seq.description,
        "model_dir": str(model_dir),
        "model_version": version,
        # events the pipeline keeps in a user's stored window: the tail, for the stateful kind
        "max_seq_len": int(enc.meta["taste.tail_events"]) if stateful else L,
        "model_kind": "stateful" if stateful else "windowed",
        "users": len(user_ids),
        "events": n_events,
        "oldest_event_time_ms": oldest,
        "mask_history": mask_history,
        "replay_vs_training_window_max_abs_diff": replay_diff,
        "offline": offline,
        "training_run": training_metrics,
        "command": set_command(args),
        "seconds": round(time.time() - t0, 1),
    }
    (out / "offline.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary


def set_command(args) -> str:
    parts = ["python -m taste_training.pipeline_eval", f"--dataset {args.dataset}", f"--model {args.model}",
             f"--out {args.out}"]
    if args.catalogue:
        parts.append(f"--catalogue {args.catalogue} --events {args.events}")
    if args.users:
        parts.append(f"--users {args.users}")
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m taste_training.pipeline_eval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, choices=["lastfm", "ml-latest-small", "sim"])
    ap.add_argument("--model", required=True, help="model directory trained on this dataset")
    ap.add_argument("--out", required=True, help="where to write events.jsonl, cases.jsonl, offline.json")
    ap.add_argument("--catalogue", help="sim: catalogue TSV")
    ap.add_argument("--events", help="sim: events JSONL")
    ap.add_argument("--users", type=int, default=0, help="only the first N test users (0: all)")
    ap.add_argument("--user-prefix", default="eval-", help="prepended to the dataset's user ids")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    s = build(args)
    print(json.dumps({k: s[k] for k in ("dataset", "model_version", "users", "events", "offline", "seconds")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
