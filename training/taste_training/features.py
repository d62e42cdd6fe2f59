"""Featurization `taste.features.v1` (docs/model-contract.md), the Python half.

The TypeScript half is `events/featurization.ts` and `model/features.ts`; both are checked against
`model/testdata/feature_vectors.json` (written by `training/make_feature_vectors.py`).

Events are dicts in the JSONL form used by the simulator and the backfill:

    {"type": "play", "userId", "itemUri", "itemKind", "eventTimeMs", "msPlayed",
     "itemDurationMs", "context", "endReason"}
    {"type": "search", "userId", "query", "eventTimeMs", "clickedItemUri", "clickedItemKind"}

Enum values are the proto names as strings ("END_REASON_COMPLETED").  Optional ordering keys
`stream` (int: 0 plays, 1 searches, as `Streams` in events/window-event.ts; missing → derived from
`type`), `partition` and `offset` (ints, missing → 0) break ties of equal `eventTimeMs`; events that
tie on all four keep their input order (stable sort).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

CONTRACT = "taste.model.v1"
FEATURES = "taste.features.v1"

PAD_ID = 0
UNK_ID = 1
PAD_URI = "<pad>"
UNK_URI = "<unk>"

KIND_PAD = 0
KIND_PLAY = 1
KIND_COMPLETED = 2
KIND_SKIPPED = 3
KIND_SEARCH = 4
NUM_EVENT_KINDS = 5

MAX_BUCKET = 24
NUM_BUCKETS = MAX_BUCKET + 1  # ids 0 (padding) .. 24

SKIP_MS = 30_000

DEFAULT_MAX_SEQ_LEN = 50
DEFAULT_QUERY_TOKENS = 8
DEFAULT_QUERY_BUCKETS = 4096

_FNV_OFFSET = 2166136261
_FNV_PRIME = 16777619


# --------------------------------------------------------------------------- hashing / tokens
def fnv1a32(data: bytes) -> int:
    """FNV-1a 32-bit over bytes."""
    h = _FNV_OFFSET
    for b in data:
        h = ((h ^ b) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def _is_letter_or_digit(ch: str) -> bool:
    # \p{L} = categories Lu Ll Lt Lm Lo; \p{N} = Nd Nl No.
    return unicodedata.category(ch)[0] in ("L", "N")


def normalize_query(query: str) -> str:
    """NFKC, then full Unicode lowercase."""
    return unicodedata.normalize("NFKC", query).lower()


def tokenize(query: str) -> list[str]:
    """All tokens (maximal runs of letters/digits) of the normalized query, in order."""
    text = normalize_query(query)
    tokens: list[str] = []
    cur: list[str] = []
    for ch in text:
        if _is_letter_or_digit(ch):
            cur.append(ch)
        elif cur:
            tokens.append("".join(cur))
            cur = []
    if cur:
        tokens.append("".join(cur))
    return tokens


def token_id(token: str, buckets: int) -> int:
    if buckets < 2:
        raise ValueError(f"query_buckets must be >= 2, got {buckets}")
    return 1 + fnv1a32(token.encode("utf-8")) % (buckets - 1)


def query_token_ids(query: str, q: int, buckets: int) -> list[int]:
    """The first q token ids of the query (no padding)."""
    return [token_id(t, buckets) for t in tokenize(query)[:q]]


# --------------------------------------------------------------------------- buckets / kinds
def bitlen(n: int) -> int:
    if n < 0:
        raise ValueError("bitlen of a negative number")
    return int(n).bit_length()


def time_bucket(delta_ms: int) -> int:
    """`1 + bitlen(floor(max(0, delta_ms) / 1000))` clipped to 1..24."""
    secs = max(0, int(delta_ms)) // 1000
    return min(MAX_BUCKET, 1 + bitlen(secs))


def play_kind(end_reason: str | None, ms_played: int, item_duration_ms: int) -> int:
    ms_played = int(ms_played or 0)
    item_duration_ms = int(item_duration_ms or 0)
    if end_reason == "END_REASON_COMPLETED" or (
        item_duration_ms > 0 and ms_played * 10 >= item_duration_ms * 9
    ):
        return KIND_COMPLETED
    if end_reason in ("END_REASON_SKIPPED_FORWARD", "END_REASON_SKIPPED_BACKWARD") or ms_played < SKIP_MS:
        return KIND_SKIPPED
    return KIND_PLAY


def event_kind(ev: Mapping) -> int:
    t = ev.get("type")
    if t == "play":
        return play_kind(ev.get("endReason"), ev.get("msPlayed", 0), ev.get("itemDurationMs", 0))
    if t == "search":
        return KIND_SEARCH
    raise ValueError(f"unknown event type {t!r}")


# --------------------------------------------------------------------------- vocabulary
class Vocab:
    """Item vocabulary: id i is line i of items.tsv; 0 = <pad>, 1 = <unk>."""

    def __init__(self, uris: Sequence[str]):
        uris = list(uris)
        if len(uris) < 2 or uris[0] != PAD_URI or uris[1] != UNK_URI:
            raise ValueError("vocabulary must start with '<pad>', '<unk>'")
        self.uris = uris
        self.index: dict[str, int] = {}
        for i, u in enumerate(uris):
            if i >= 2 and u in self.index:
                raise ValueError(f"duplicate URI in vocabulary: {u!r}")
            self.index.setdefault(u, i)

    def __len__(self) -> int:
        return len(self.uris)

    def id(self, uri: str | None) -> int:
        if uri is None:
            return UNK_ID
        i = self.index.get(uri, UNK_ID)
        return UNK_ID if i < 2 else i  # the literal strings "<pad>"/"<unk>" are not items

    @classmethod
    def from_items_tsv(cls, path: str) -> "Vocab":
        with open(path, encoding="utf-8") as f:
            return cls([line.rstrip("\n") for line in f if line.rstrip("\n") != ""])

    @classmethod
    def from_catalogue(cls, uris: Iterable[str]) -> "Vocab":
        return cls([PAD_URI, UNK_URI, *uris])


def item_id(ev: Mapping, vocab: Vocab) -> int:
    t = ev.get("type")
    if t == "play":
        return vocab.id(ev.get("itemUri") or "")
    if t == "search":
        uri = ev.get("clickedItemUri") or ""
        return PAD_ID if uri == "" else vocab.id(uri)
    raise ValueError(f"unknown event type {t!r}")


# --------------------------------------------------------------------------- windows
STREAM_PLAY = 0
STREAM_SEARCH = 1


def stream_of(ev: Mapping) -> int:
    s = ev.get("stream")
    if s is not None:
        return int(s)
    return STREAM_SEARCH if ev.get("type") == "search" else STREAM_PLAY


def order_key(ev: Mapping):
    return (int(ev["eventTimeMs"]), stream_of(ev), int(ev.get("partition", 0)), int(ev.get("offset", 0)))


def window(events: Iterable[Mapping], max_seq_len: int) -> list[Mapping]:
    """Events ordered oldest→newest (stable), keeping the newest max_seq_len."""
    evs = sorted(events, key=order_key)
    return evs[-max_seq_len:] if max_seq_len > 0 else []


@dataclass
class UserFeatures:
    """Unpadded features of one user's window (length n <= max_seq_len), oldest first."""

    item_ids: list[int] = field(default_factory=list)
    event_kinds: list[int] = field(default_factory=list)
    query_tokens: list[list[int]] = field(default_factory=list)  # n x Q, right-padded with 0
    gap_buckets: list[int] = field(default_factory=list)
    age_buckets: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.item_ids)


def featurize_user(
    events: Iterable[Mapping],
    vocab: Vocab,
    max_seq_len: int = DEFAULT_MAX_SEQ_LEN,
    q: int = DEFAULT_QUERY_TOKENS,
    buckets: int = DEFAULT_QUERY_BUCKETS,
) -> UserFeatures:
    evs = window(events, max_seq_len)
    out = UserFeatures()
    if not evs:
        return out
    t_last = int(evs[-1]["eventTimeMs"])
    prev = None
    for ev in evs:
        t = int(ev["eventTimeMs"])
        out.item_ids.append(item_id(ev, vocab))
        out.event_kinds.append(event_kind(ev))
        toks = query_token_ids(ev.get("query") or "", q, buckets) if ev.get("type") == "search" else []
        out.query_tokens.append(toks + [0] * (q - len(toks)))
        out.gap_buckets.append(1 if prev is None else time_bucket(t - prev))
        out.age_buckets.append(time_bucket(t_last - t))
        prev = t
    return out


def pad_batch(users: Sequence[UserFeatures], q: int, t: int | None = None) -> dict[str, list]:
    """Left-pad to the longest window (or to t) → nested int lists shaped like the model inputs."""
    T = max((len(u) for u in users), default=0) if t is None else t
    res: dict[str, list] = {k: [] for k in ("item_ids", "event_kinds", "query_tokens", "gap_buckets", "age_buckets")}
    for u in users:
        n = len(u)
        if n > T:
            raise ValueError(f"window of {n} events does not fit T={T}")
        p = T - n
        res["item_ids"].append([0] * p + u.item_ids)
        res["event_kinds"].append([0] * p + u.event_kinds)
        res["query_tokens"].append([[0] * q for _ in range(p)] + [list(r) for r in u.query_tokens])
        res["gap_buckets"].append([0] * p + u.gap_buckets)
        res["age_buckets"].append([0] * p + u.age_buckets)
    return res


def featurize_batch(
    users_events: Sequence[Iterable[Mapping]],
    vocab: Vocab,
    max_seq_len: int = DEFAULT_MAX_SEQ_LEN,
    q: int = DEFAULT_QUERY_TOKENS,
    buckets: int = DEFAULT_QUERY_BUCKETS,
    t: int | None = None,
) -> dict[str, list]:
    feats = [featurize_user(evs, vocab, max_seq_len, q, buckets) for evs in users_events]
    return pad_batch(feats, q, t)


def to_numpy(batch: Mapping[str, list]):
    import numpy as np

    return {k: np.asarray(v, dtype=np.int64) for k, v in batch.items()}
