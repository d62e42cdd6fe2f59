"""Leave-one-out split, ranking metrics and the baselines (popularity, last-item co-occurrence kNN)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import features as fx
from .data import Sequences

KS = (1, 5, 10, 20)


@dataclass
class Split:
    """Per user: positions of the validation and test targets (leave-one-out on eligible events)."""

    users: np.ndarray  # user indices that take part (>= 3 eligible targets)
    val_pos: np.ndarray  # event index of the validation target (input = events before it)
    test_pos: np.ndarray  # event index of the test target
    eligible: list[np.ndarray]  # per user (all users): bool mask of events that may be prediction targets


def eligible_targets(seq: Sequences, u: int, plays_only: bool) -> np.ndarray:
    ok = seq.items[u] >= 2
    if plays_only:
        ok &= np.isin(seq.kinds[u], (fx.KIND_PLAY, fx.KIND_COMPLETED))
    return ok


def leave_one_out(seq: Sequences, plays_only: bool = False) -> Split:
    users, val, test, elig = [], [], [], []
    for u in range(len(seq.users)):
        e = eligible_targets(seq, u, plays_only)
        elig.append(e)
        pos = np.flatnonzero(e)
        # need the two held-out targets plus at least one earlier event to learn from
        if len(pos) >= 3 and pos[-2] >= 1:
            users.append(u)
            val.append(pos[-2])
            test.append(pos[-1])
    return Split(np.asarray(users), np.asarray(val), np.asarray(test), elig)


# --------------------------------------------------------------------------- metrics
def ranks_full(scores: np.ndarray, targets: np.ndarray, exclude: list[np.ndarray] | None) -> np.ndarray:
    """0-based rank of each target among all items (rows 0/1 and `exclude` items removed)."""
    s = scores.astype(np.float64, copy=True)
    s[:, :2] = -np.inf
    if exclude is not None:
        for b, ex in enumerate(exclude):
            ex = ex[(ex >= 2) & (ex != targets[b])]
            s[b, ex] = -np.inf
    t = s[np.arange(len(targets)), targets]
    return (s > t[:, None]).sum(axis=1)


def ranks_sampled(scores: np.ndarray, targets: np.ndarray, negatives: np.ndarray) -> np.ndarray:
    """0-based rank of each target among itself + its negatives [B, N]."""
    t = scores[np.arange(len(targets)), targets]
    n = np.take_along_axis(scores, negatives, axis=1)
    return (n > t[:, None]).sum(axis=1)


def metrics_from_ranks(ranks: np.ndarray) -> dict[str, float]:
    r = np.asarray(ranks, dtype=np.float64)
    out: dict[str, float] = {}
    for k in KS:
        hit = r < k
        out[f"HR@{k}"] = float(hit.mean())
        out[f"NDCG@{k}"] = float(np.where(hit, 1.0 / np.log2(r + 2.0), 0.0).mean())
    out["MRR"] = float((1.0 / (r + 1.0)).mean())
    out["MRR@10"] = float(np.where(r < 10, 1.0 / (r + 1.0), 0.0).mean())
    out["users"] = int(len(r))
    return out


# --------------------------------------------------------------------------- baselines
def _inputs(seq: Sequences, split: Split, which: str) -> tuple[list[np.ndarray], np.ndarray]:
    pos = split.val_pos if which == "val" else split.test_pos
    hist = [seq.items[u][:p] for u, p in zip(split.users, pos)]
    tgt = np.asarray([seq.items[u][p] for u, p in zip(split.users, pos)])
    return hist, tgt


def training_sequences(seq: Sequences, split: Split) -> list[np.ndarray]:
    """What the model may learn from: each user's items before the validation target."""
    vp = dict(zip(split.users.tolist(), split.val_pos.tolist()))
    out = []
    for u in range(len(seq.users)):
        items = seq.items[u][: vp.get(u, len(seq.items[u]))]
        out.append(items[items >= 2])
    return out


class Popularity:
    name = "popularity"

    def __init__(self, train: list[np.ndarray], num_items: int):
        c = np.zeros(num_items, dtype=np.float64)
        for s in train:
            np.add.at(c, s, 1.0)
        self.counts = c

    def scores(self, hist: list[np.ndarray]) -> np.ndarray:
        return np.tile(self.counts, (len(hist), 1))


class LastItemKNN:
    """Item-to-item co-occurrence within a window of following events (1/distance weights),
    cosine-normalised by item counts; a user is scored from the last item (+ a popularity tie-break)."""

    name = "last-item kNN"

    def __init__(self, train: list[np.ndarray], num_items: int, window: int = 5):
        self.m = np.zeros((num_items, num_items), dtype=np.float32)  # dense: fine for ~10k items
        pop = np.zeros(num_items)
        for s in train:
            np.add.at(pop, s, 1.0)
            for d in range(1, window + 1):
                if len(s) > d:
                    np.add.at(self.m, (s[:-d], s[d:]), 1.0 / d)
                    np.add.at(self.m, (s[d:], s[:-d]), 1.0 / d)
        self.pop = pop
        self.norm = np.sqrt(np.maximum(pop, 1.0))
        self.window = window

    def scores(self, hist: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(hist), len(self.pop)))
        tie = self.pop / (self.pop.max() + 1.0) * 1e-6
        for b, h in enumerate(hist):
            h = h[h >= 2]
            if len(h):
                a = int(h[-1])
                row = self.m[a].astype(np.float64)
                out[b] = row / (self.norm[a] * self.norm)
            out[b] += tie
        return out


def evaluate_scorer(scores: np.ndarray, seq: Sequences, split: Split, which: str,
                    mask_history: bool) -> dict[str, dict]:
    hist, tgt = _inputs(seq, split, which)
    res = {"full": metrics_from_ranks(ranks_full(scores, tgt, hist if mask_history else None))}
    if seq.negatives is not None:
        neg = np.stack([seq.negatives[u] for u in split.users])
        res["sampled"] = metrics_from_ranks(ranks_sampled(scores, tgt, neg))
    return res


def evaluate_baselines(seq: Sequences, split: Split, which: str, mask_history: bool) -> dict[str, dict]:
    train = training_sequences(seq, split)
    hist, _ = _inputs(seq, split, which)
    out = {}
    for model in (Popularity(train, seq.num_items), LastItemKNN(train, seq.num_items)):
        out[model.name] = evaluate_scorer(model.scores(hist), seq, split, which, mask_history)
    return out
