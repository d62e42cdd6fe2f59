"""Datasets → per-user chronological event arrays in the model's vocabulary, plus the leave-one-out split.

Sources (read at run time from ../shared/datasets, never copied into the repository):
- `lastfm`: lastfm-s3rec/LastFM.txt (`user item1 item2 ...`, chronological, no timestamps) and
  LastFM_sample.txt (`user neg1 .. neg99`, the S3-Rec sampled-metric negatives).
- `ml-latest-small`: ml-latest-small/ratings.csv (`userId,movieId,rating,timestamp` seconds), every
  rating an implicit interaction, iterative 5-core on users and items, order by (timestamp, movieId).
- `sim`: the project's simulator output: a catalogue TSV (`uri\\tkind\\tgenre\\tartist\\ttitle\\tdurationMs`)
  and events JSONL (the `features.py` event form, one per line).

Datasets without event kinds or queries become plays (kind 1). Without timestamps, gap and age
buckets are 1 (as the contract gives a window whose events all share one timestamp).
"""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import features as fx

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_ROOT = REPO_ROOT.parent / "shared" / "datasets"


def data_root() -> Path:
    return Path(os.environ.get("TASTE_DATASETS", str(DEFAULT_DATA_ROOT)))


@dataclass
class Sequences:
    name: str
    uris: list[str]  # vocabulary: <pad>, <unk>, items...
    users: list[str]
    items: list[np.ndarray]  # per user: item ids (int64), chronological; 0 = search without click
    kinds: list[np.ndarray]  # per user: event kinds 1..4
    times_ms: list[np.ndarray | None]  # per user: event times (int64 ms) or None
    queries: list[np.ndarray | None]  # per user: [n, Q] hashed query tokens, or None (no searches)
    negatives: dict[int, np.ndarray] | None = None  # user index -> sampled negatives (vocab ids)
    description: str = ""
    # optional item side information: vocab id -> attribute ids (repeats allowed: a count is a weight)
    item_attributes: dict[int, np.ndarray] | None = None
    stats: dict = field(default_factory=dict)

    @property
    def num_items(self) -> int:
        return len(self.uris)

    def summary(self) -> dict:
        lens = np.array([len(x) for x in self.items])
        return {"users": len(self.users), "items": len(self.uris) - 2, "events": int(lens.sum()),
                "seq_len_min": int(lens.min()), "seq_len_mean": round(float(lens.mean()), 2),
                "seq_len_max": int(lens.max()), **self.stats}


# --------------------------------------------------------------------------- LastFM (S3-Rec)
def load_lastfm(root: Path | None = None) -> Sequences:
    d = (root or data_root()) / "lastfm-s3rec"
    raw: list[tuple[str, list[int]]] = []
    with open(d / "LastFM.txt") as f:
        for line in f:
            parts = line.split()
            if parts:
                raw.append((parts[0], [int(x) for x in parts[1:]]))
    max_item = max(max(s) for _, s in raw)
    # vocabulary: id = raw item id + 1 (raw ids are 1..3646, so raw 1 -> id 2)
    uris = [fx.PAD_URI, fx.UNK_URI] + [f"lastfm:artist:{i}" for i in range(1, max_item + 1)]
    users = [u for u, _ in raw]
    items = [np.asarray(s, dtype=np.int64) + 1 for _, s in raw]
    kinds = [np.full(len(s), fx.KIND_PLAY, dtype=np.int64) for s in items]
    uidx = {u: i for i, u in enumerate(users)}
    negatives = {}
    with open(d / "LastFM_sample.txt") as f:
        for line in f:
            parts = line.split()
            if parts:
                negatives[uidx[parts[0]]] = np.asarray([int(x) for x in parts[1:]], dtype=np.int64) + 1
    with open(d / "LastFM_item2attributes.json") as f:
        # the tags users attached to each artist (S3-Rec's item attributes), keyed by raw item id
        item_attributes = {int(raw_id) + 1: np.asarray(tags, dtype=np.int64) for raw_id, tags in json.load(f).items()}
    return Sequences("lastfm", uris, users, items, kinds, [None] * len(users), [None] * len(users),
                     negatives, item_attributes=item_attributes, description="LastFM (HetRec 2011 via S3-Rec preprocessing; lastfm-s3rec/LastFM.txt), "
                     "all events plays, no timestamps (gap/age bucket 1); sampled metrics use LastFM_sample.txt")


def attribute_matrix(seq: Sequences) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The items' attributes as a sparse [num_items, num_attributes] matrix in COO form (rows,
    cols, weights, num_attributes): each item's row holds how often each attribute was given to it,
    divided by the item's total, so the attribute term is a weighted mean. Items without attributes
    (and <pad>, <unk>) have empty rows."""
    if not seq.item_attributes:
        raise ValueError(f"dataset {seq.name} has no item attributes")
    rows, cols, weights = [], [], []
    for item, attrs in sorted(seq.item_attributes.items()):
        if not 2 <= item < seq.num_items or len(attrs) == 0:
            continue
        values, counts = np.unique(attrs, return_counts=True)
        rows.append(np.full(len(values), item, dtype=np.int64))
        cols.append(values)
        weights.append(counts / counts.sum())
    num_attributes = int(max(c.max() for c in cols)) + 1
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(weights).astype(np.float32), num_attributes


# --------------------------------------------------------------------------- MovieLens latest-small
def load_ml_latest_small(root: Path | None = None, core: int = 5) -> Sequences:
    d = (root or data_root()) / "ml-latest-small"
    rows: list[tuple[int, int, int]] = []
    with open(d / "ratings.csv", newline="") as f:
        for r in csv.DictReader(f):
            rows.append((int(r["userId"]), int(r["movieId"]), int(r["timestamp"])))
    titled = set()
    genres_of: dict[int, list[str]] = {}
    with open(d / "movies.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["title"].strip():
                titled.add(int(r["movieId"]))
            # static catalogue metadata, known before any rating: side information that cannot leak the split
            genres_of[int(r["movieId"])] = [g for g in r["genres"].split("|") if g and g != "(no genres listed)"]
    rows = [r for r in rows if r[1] in titled]
    # iterative k-core on users and items
    while True:
        uc, ic = defaultdict(int), defaultdict(int)
        for u, i, _ in rows:
            uc[u] += 1
            ic[i] += 1
        keep = [r for r in rows if uc[r[0]] >= core and ic[r[1]] >= core]
        if len(keep) == len(rows):
            break
        rows = keep
    by_user: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for u, i, t in rows:
        by_user[u].append((t, i))
    movie_ids = sorted({i for _, i, _ in rows})
    mid = {m: k + 2 for k, m in enumerate(movie_ids)}
    uris = [fx.PAD_URI, fx.UNK_URI] + [f"ml:movie:{m}" for m in movie_ids]
    users, items, kinds, times = [], [], [], []
    for u in sorted(by_user):
        ev = sorted(by_user[u])  # (timestamp, movieId): deterministic tie-break
        users.append(str(u))
        items.append(np.asarray([mid[i] for _, i in ev], dtype=np.int64))
        kinds.append(np.full(len(ev), fx.KIND_PLAY, dtype=np.int64))
        times.append(np.asarray([t * 1000 for t, _ in ev], dtype=np.int64))
    genre_ids = {g: k + 1 for k, g in enumerate(sorted({g for m in movie_ids for g in genres_of.get(m, [])}))}
    item_attributes = {mid[m]: np.asarray([genre_ids[g] for g in genres_of[m]], dtype=np.int64)
                       for m in movie_ids if genres_of.get(m)}
    return Sequences("ml-latest-small", uris, users, items, kinds, times, [None] * len(users), None,
                     item_attributes=item_attributes,
                     description=f"MovieLens latest-small (ratings.csv), every rating an implicit interaction, "
                     f"iterative {core}-core, ordered by (timestamp, movieId); all events plays, gap/age from timestamps")


# --------------------------------------------------------------------------- simulator
def load_sim(catalogue: str | os.PathLike, events: str | os.PathLike, q: int = fx.DEFAULT_QUERY_TOKENS,
             buckets: int = fx.DEFAULT_QUERY_BUCKETS, use_searches: bool = True,
             use_query_text: bool = True) -> Sequences:
    from .export import read_vocab_file

    uris = read_vocab_file(catalogue)
    vocab = fx.Vocab(uris)
    by_user, n_lines = read_sim_events(events, use_searches)
    users, items, kinds, times, queries = [], [], [], [], []
    for u, evs in by_user.items():
        users.append(u)
        items.append(np.asarray([fx.item_id(e, vocab) for e in evs], dtype=np.int64))
        kinds.append(np.asarray([fx.event_kind(e) for e in evs], dtype=np.int64))
        times.append(np.asarray([int(e["eventTimeMs"]) for e in evs], dtype=np.int64))
        qt = np.zeros((len(evs), q), dtype=np.int64)
        for k, e in enumerate(evs):
            if e["type"] == "search" and use_query_text:
                ids = fx.query_token_ids(e.get("query") or "", q, buckets)
                qt[k, :len(ids)] = ids
        queries.append(qt)
    return Sequences("sim", uris, users, items, kinds, times, queries, None,
                     item_attributes=sim_item_attributes(catalogue, vocab),
                     description=f"simulator: catalogue {Path(catalogue).name}, events {Path(events).name}"
                     + ("" if use_searches else " (search events dropped)")
                     + ("" if use_query_text else " (query text dropped)"),
                     stats={"event_lines": n_lines})


def sim_item_attributes(catalogue: str | os.PathLike, vocab: fx.Vocab) -> dict[int, np.ndarray] | None:
    """A simulator catalogue's genre and artist per item, as attribute ids (1-based); None for an
    items.tsv vocabulary, which has no such columns."""
    names: dict[str, int] = {}
    out: dict[int, np.ndarray] = {}
    with open(catalogue, encoding="utf-8") as f:
        for line in f:
            cols = line.rstrip("\r\n").split("\t")
            if len(cols) < 4 or cols[0] in (fx.PAD_URI, fx.UNK_URI):
                continue
            attrs = [names.setdefault(name, len(names) + 1) for name in (f"genre:{cols[2]}", f"artist:{cols[3]}")]
            out[vocab.id(cols[0])] = np.asarray(attrs, dtype=np.int64)
    return out or None


def read_sim_events(events: str | os.PathLike, use_searches: bool = True) -> tuple[dict[str, list[dict]], int]:
    """Simulator events JSONL → {user: events in contract order}, users sorted; and the line count.
    Each event keeps its JSON fields (plus `offset` = its line, which breaks remaining ties)."""
    by_user: dict[str, list[tuple[tuple, dict]]] = defaultdict(list)
    n_lines = 0
    with open(events, encoding="utf-8") as f:
        for ln, line in enumerate(f):
            line = line.strip()
            if not line:
                continue
            ev = json.loads(line)
            n_lines += 1
            if ev.get("type") not in ("play", "search"):
                continue
            if ev["type"] == "search" and not use_searches:
                continue
            ev.setdefault("offset", ln)
            by_user[ev["userId"]].append((fx.order_key(ev), ev))
    ordered = {u: [e for _, e in sorted(by_user[u], key=lambda x: x[0])] for u in sorted(by_user)}
    return ordered, n_lines


def load(name: str, **kw) -> Sequences:
    if name == "lastfm":
        return load_lastfm()
    if name in ("ml-latest-small", "ml"):
        return load_ml_latest_small()
    if name == "sim":
        return load_sim(**kw)
    raise ValueError(f"unknown dataset {name!r}")


# --------------------------------------------------------------------------- windows → features
def time_buckets(delta_ms: np.ndarray) -> np.ndarray:
    """Vectorised `features.time_bucket` (exact for int64 inputs)."""
    secs = np.maximum(delta_ms, 0) // 1000
    # bit length of non-negative int64 via log2 on exact powers: use frexp on float64 carefully
    bl = np.zeros_like(secs)
    nz = secs > 0
    # for secs < 2**53, floor(log2(x)) + 1 via frexp is exact
    _, e = np.frexp(secs[nz].astype(np.float64))
    bl[nz] = e
    return np.minimum(fx.MAX_BUCKET, 1 + bl)


def window_features(seq: Sequences, u: int, start: int, end: int, q: int) -> dict[str, np.ndarray]:
    """Features of events [start, end) of user u, exactly as the contract builds them for that window."""
    n = end - start
    out = {
        "item_ids": seq.items[u][start:end],
        "event_kinds": seq.kinds[u][start:end],
        "query_tokens": (seq.queries[u][start:end, :q] if seq.queries[u] is not None
                         else np.zeros((n, q), dtype=np.int64)),
    }
    t = seq.times_ms[u]
    if t is None:
        out["gap_buckets"] = np.ones(n, dtype=np.int64)
        out["age_buckets"] = np.ones(n, dtype=np.int64)
    else:
        w = t[start:end]
        gap = np.ones(n, dtype=np.int64)
        if n > 1:
            gap[1:] = time_buckets(w[1:] - w[:-1])
        out["gap_buckets"] = gap
        out["age_buckets"] = time_buckets(w[-1] - w)
    return out


def collate(windows: list[dict[str, np.ndarray]], q: int, t: int | None = None,
            targets: list[np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Left-pad windows into a batch (plus `targets` [B,T] if given, 0 = no target)."""
    T = t or max(len(w["item_ids"]) for w in windows)
    B = len(windows)
    out = {k: np.zeros((B, T), dtype=np.int64) for k in ("item_ids", "event_kinds", "gap_buckets", "age_buckets")}
    out["query_tokens"] = np.zeros((B, T, q), dtype=np.int64)
    if targets is not None:
        out["targets"] = np.zeros((B, T), dtype=np.int64)
    for b, w in enumerate(windows):
        n = len(w["item_ids"])
        for k in ("item_ids", "event_kinds", "gap_buckets", "age_buckets", "query_tokens"):
            out[k][b, T - n:] = w[k]
        if targets is not None:
            out["targets"][b, T - n:] = targets[b]
    return out
