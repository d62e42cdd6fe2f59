"""What search events add: two exported models trained on the same simulator data, one with search
events and one with plays only, compared on the same test users and targets.

    python -m taste_training.ablation --catalogue C --events E --tastes T \
        --with-searches <model dir> --plays-only <model dir> [--out results.json]

Reports, for each arm and for the last-item kNN and popularity baselines of the same split:
- ranking (full, no masking, as the simulator rows of RESULTS.md): HR@10, NDCG@10, overall and by
  how many plays the user had before the target (cold start: 1-5 plays; 6-20; more than 20);
- taste recovery against the simulator's true tastes (`taste simulate --tastes-out`):
  * genre profile of the embedding = genre shares of the user's top-100 items by `user · item`;
    top-genre accuracy (profile's largest genre is the user's largest true genre) and cosine
    similarity between the profile and the true genre weights;
  * linear probe: ridge regression from the embedding to the true latent vector, R^2 by 5-fold
    cross-validation over users;
  the same measures for the genre histogram of the user's plays in the window (counting, no model).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from . import data as dt
from . import evaluate as ev
from . import features as fx
from .onnx_encoder import OnnxEncoder

SLICES = (("1-5 plays", 1, 5), ("6-20 plays", 6, 20), (">20 plays", 21, 10**9))
TRUNCATIONS = (1, 3, 5, 10)  # emulated cold start: only the user's last n plays (and the searches among them)
PLAY_KINDS = (fx.KIND_PLAY, fx.KIND_COMPLETED, fx.KIND_SKIPPED)
TOP_K_PROFILE = 100


def read_genres(catalogue: str, uris: list[str]) -> tuple[np.ndarray, list[str]]:
    """Genre index of every vocabulary id (-1 for <pad>/<unk>) and the genre names."""
    genre_of_uri = {}
    with open(catalogue, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 3:
                genre_of_uri[parts[0]] = parts[2]
    names = sorted(set(genre_of_uri.values()))
    index = {g: i for i, g in enumerate(names)}
    return np.asarray([index.get(genre_of_uri.get(u, ""), -1) for u in uris]), names


def read_tastes(path: str, names: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """userId -> (true genre weights over `names`, latent vector)."""
    index = {g: i for i, g in enumerate(names)}
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                t = json.loads(line)
                w = np.zeros(len(names))
                for g, v in t["genres"].items():
                    if g in index:
                        w[index[g]] = v
                out[t["userId"]] = (w, np.asarray(t["vector"], dtype=np.float64))
    return out


def truncated_windows(seq: dt.Sequences, split: ev.Split, n: int, q: int) -> list[dict]:
    """Each test user's window cut to start at their n-th last play before the target."""
    wins = []
    for u, p in zip(split.users, split.test_pos):
        play_at = np.flatnonzero(np.isin(seq.kinds[u][:p], PLAY_KINDS))
        start = int(play_at[-n]) if len(play_at) >= n else 0
        w = dt.window_features(seq, int(u), start, int(p), q)
        w["age_buckets"] = np.ones_like(w["age_buckets"])
        wins.append(w)
    return wins


def ranking_by_slice(ranks: np.ndarray, plays: np.ndarray) -> dict:
    out = {"all": pick(ev.metrics_from_ranks(ranks))}
    for name, lo, hi in SLICES:
        sel = (plays >= lo) & (plays <= hi)
        out[name] = pick(ev.metrics_from_ranks(ranks[sel])) if sel.any() else None
    return out


def pick(m: dict) -> dict:
    return {k: m[k] for k in ("HR@10", "NDCG@10", "users")}


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def probe_r2(x: np.ndarray, y: np.ndarray, folds: int = 5, alpha: float = 1.0, seed: int = 0) -> float:
    """Cross-validated R^2 of a ridge regression x -> y (all outputs pooled)."""
    idx = np.random.default_rng(seed).permutation(len(x))
    pred = np.zeros_like(y)
    for f in range(folds):
        test = idx[f::folds]
        train = np.setdiff1d(idx, test)
        xm, ym = x[train].mean(0), y[train].mean(0)
        xt = x[train] - xm
        w = np.linalg.solve(xt.T @ xt + alpha * np.eye(x.shape[1]), xt.T @ (y[train] - ym))
        pred[test] = (x[test] - xm) @ w + ym
    return float(1.0 - ((y - pred) ** 2).sum() / ((y - y.mean(0)) ** 2).sum())


def taste_recovery(profiles: np.ndarray, features: np.ndarray, true_w: np.ndarray, true_v: np.ndarray,
                   plays: np.ndarray) -> dict:
    top_ok = profiles.argmax(1) == true_w.argmax(1)
    cos = cosine(profiles, true_w)
    out = {"all": {"top_genre_accuracy": float(top_ok.mean()), "genre_cosine": float(cos.mean()),
                   "latent_probe_r2": probe_r2(features, true_v), "users": int(len(plays))}}
    for name, lo, hi in SLICES:
        sel = (plays >= lo) & (plays <= hi)
        if sel.any():
            out[name] = {"top_genre_accuracy": float(top_ok[sel].mean()), "genre_cosine": float(cos[sel].mean()),
                         "users": int(sel.sum())}
    return out


def genre_profile_of_scores(scores: np.ndarray, genre: np.ndarray, n_genres: int) -> np.ndarray:
    k = min(TOP_K_PROFILE, int((genre >= 0).sum()))
    s = scores.copy()
    s[:, genre < 0] = -np.inf
    top = np.argpartition(-s, k - 1, axis=1)[:, :k]
    prof = np.zeros((len(s), n_genres))
    for b in range(len(s)):
        np.add.at(prof[b], genre[top[b]], 1.0)
    return prof / k


def run(args) -> dict:
    arms = {"with searches": (Path(args.with_searches), True), "plays only": (Path(args.plays_only), False)}
    result: dict = {"command": "python -m taste_training.ablation " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None and k != "out"),
        "ranking": {}, "taste_recovery": {}}
    reference = None
    for name, (model_dir, searches) in arms.items():
        encoder = OnnxEncoder(model_dir / "model.onnx")
        meta = encoder.meta
        L, q, buckets = int(meta["taste.max_seq_len"]), int(meta["taste.query_tokens"]), int(meta["taste.query_buckets"])
        seq = dt.load_sim(args.catalogue, args.events, q, buckets, use_searches=searches)
        split = ev.leave_one_out(seq, plays_only=True)
        from .train import eval_inputs

        wins, targets, hist = eval_inputs(seq, split, "test", L, q, "none")
        users = [seq.users[u] for u in split.users]
        kinds = [seq.kinds[u][:p] for u, p in zip(split.users, split.test_pos)]
        plays = np.asarray([int(np.isin(k, PLAY_KINDS).sum()) for k in kinds])
        target_uris = [seq.uris[t] for t in targets]
        if reference is None:
            reference = {"users": users, "targets": target_uris, "plays": plays, "seq": seq, "split": split,
                         "hist": hist, "targets_ids": targets}
            genre, names = read_genres(args.catalogue, seq.uris)
            tastes = read_tastes(args.tastes, names)
            true_w = np.stack([tastes[u][0] for u in users])
            true_v = np.stack([tastes[u][1] for u in users])
        elif users != reference["users"] or target_uris != reference["targets"]:
            raise SystemExit("the two arms do not evaluate the same users and targets")
        table = np.fromfile(model_dir / "item_embeddings.f32", dtype="<f4").reshape(len(seq.uris), -1)
        emb = encoder.embed_windows(wins, q)
        scores = emb @ table.T
        result["ranking"][name] = ranking_by_slice(ev.ranks_full(scores, targets, None), plays)
        result["taste_recovery"][name] = taste_recovery(genre_profile_of_scores(scores, genre, len(names)), emb,
                                                        true_w, true_v, plays)
        result.setdefault("models", {})[name] = meta["taste.model_version"]
        trained = model_dir / "metrics.json"
        if trained.exists():
            result.setdefault("arm_commands", {})[name] = json.loads(trained.read_text()).get("command")
        result.setdefault("cold_start_truncated", {})[name] = {
            f"last {n} plays": pick(ev.metrics_from_ranks(ev.ranks_full(
                encoder.embed_windows(truncated_windows(seq, split, n, q), q) @ table.T, targets, None)))
            for n in TRUNCATIONS}

    # baselines on the plays-only view of the same split (they ignore searches)
    seq, split, hist, targets, plays = (reference[k] for k in ("seq", "split", "hist", "targets_ids", "plays"))
    train_seqs = ev.training_sequences(seq, split)
    for model in (ev.LastItemKNN(train_seqs, seq.num_items), ev.Popularity(train_seqs, seq.num_items)):
        result["ranking"][model.name] = ranking_by_slice(ev.ranks_full(model.scores(hist), targets, None), plays)
    counts = np.zeros((len(hist), len(names)))
    for b, h in enumerate(hist):
        g = genre[h[-50:]]
        np.add.at(counts[b], g[g >= 0], 1.0)
    profile = counts / np.maximum(counts.sum(1, keepdims=True), 1.0)
    result["taste_recovery"]["genre histogram of the window's plays (no model)"] = taste_recovery(
        profile, profile, true_w, true_v, plays)
    result["slices"] = {name: int(((plays >= lo) & (plays <= hi)).sum()) for name, lo, hi in SLICES}
    result["search_intent"] = search_intent(seq, split)
    return result


def search_intent(seq: dt.Sequences, split: ev.Split) -> dict:
    """How often the test target was clicked in a search before it was played (data with searches)."""
    right_after = anywhere = 0
    for u, p in zip(split.users, split.test_pos):
        kinds, items, target = seq.kinds[u][:p], seq.items[u][:p], seq.items[u][p]
        anywhere += int(((kinds == fx.KIND_SEARCH) & (items == target)).any())
        right_after += int(p > 0 and kinds[-1] == fx.KIND_SEARCH and items[-1] == target)
    return {"test_targets": int(len(split.users)), "target_right_after_a_search_that_clicked_it": right_after,
            "target_clicked_in_an_earlier_search": anywhere}


def to_markdown(r: dict) -> str:
    cols = ["all"] + [s[0] for s in SLICES]
    lines = ["| ranking (HR@10 / NDCG@10) | " + " | ".join(f"{c} ({r['slices'].get(c, r['ranking']['plays only']['all']['users'])} users)" for c in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for name, row in r["ranking"].items():
        lines.append(f"| {name} | " + " | ".join("—" if row[c] is None else f"{row[c]['HR@10']:.4f} / {row[c]['NDCG@10']:.4f}" for c in cols) + " |")
    arms = list(r["cold_start_truncated"])
    lines += ["", "| emulated cold start: history cut to the last n plays (HR@10 / NDCG@10) | " + " | ".join(arms) + " |",
              "|---|" + "---:|" * len(arms)]
    for n in TRUNCATIONS:
        key = f"last {n} plays"
        lines.append(f"| {key} | " + " | ".join(f"{r['cold_start_truncated'][a][key]['HR@10']:.4f} / "
                                                f"{r['cold_start_truncated'][a][key]['NDCG@10']:.4f}" for a in arms) + " |")
    lines += ["", "| taste recovery | top-genre accuracy (all) | genre cosine (all) | latent probe R² | "
              + " | ".join(f"top-genre acc. {s[0]}" for s in SLICES) + " |", "|---|---:|---:|---:|" + "---:|" * len(SLICES)]
    for name, row in r["taste_recovery"].items():
        a = row["all"]
        lines.append(f"| {name} | {a['top_genre_accuracy']:.3f} | {a['genre_cosine']:.3f} | {a['latent_probe_r2']:.3f} | "
                     + " | ".join(f"{row[s[0]]['top_genre_accuracy']:.3f}" if s[0] in row else "—" for s in SLICES) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m taste_training.ablation", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--catalogue", required=True)
    ap.add_argument("--events", required=True)
    ap.add_argument("--tastes", required=True, help="true tastes JSONL (taste simulate --tastes-out)")
    ap.add_argument("--with-searches", required=True, help="model dir trained with search events")
    ap.add_argument("--plays-only", required=True, help="model dir trained with --no-searches")
    ap.add_argument("--out", help="write the result JSON here")
    args = ap.parse_args(argv)
    r = run(args)
    if args.out:
        Path(args.out).write_text(json.dumps(r, indent=1) + "\n", encoding="utf-8")
    print(to_markdown(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
