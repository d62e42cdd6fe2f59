"""Train, evaluate and export a taste encoder.

    python -m taste_training.train --dataset lastfm|ml-latest-small|sim --out <dir> [--epochs N] [--seed S]
        [--catalogue catalogue.tsv --events events.jsonl]   (for --dataset sim)

Protocol (SASRec / S3-Rec): leave-one-out per user; the last eligible event is the test target, the
one before it the validation target (used for early stopping / model selection); the model learns
from the events before the validation target, predicting the next item at every position (full
softmax over the item table). Metrics: HR@k, NDCG@k, MRR on full ranking (history masked for the
public datasets) and, for LastFM, on the 99 shipped negatives. Baselines (popularity, last-item
co-occurrence kNN) are computed in the same run on the same split. Writes <out>/metrics.json and
exports the model directory (model.onnx, items.tsv, item_embeddings.f32, MODEL_CARD.md) into <out>.

Several processes: `torchrun --nproc-per-node N -m taste_training.train ...` (DistributedDataParallel;
README.md, "Distributed training"). Each global batch is split across the ranks; rank 0 evaluates,
decides early stopping and writes <out>.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import data as dt
from . import distributed
from . import evaluate as ev
from . import features as fx
from .model import ModelConfig, TasteEncoder, add_shape_arguments
from .stateful import StatefulConfig, StatefulEncoder


def tune_malloc() -> None:
    """Keep freed memory in the process: training allocates the same large tensors every step and,
    on small VMs, returning them to the OS and faulting them back in costs more than the math."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 * 1024 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1 << 34)  # M_TRIM_THRESHOLD
        libc.mallopt(-2, 1 << 28)  # M_TOP_PAD
    except (OSError, AttributeError):
        pass


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------- samples
def recent_targets(tgt: np.ndarray, start: int, newest: int, recent: int) -> np.ndarray:
    """`tgt[j]` is the target event start + 1 + j; those older than the user's newest `recent`
    training targets (events newest - recent + 1 .. newest) are set to 0 (none): the older history
    stays input but is not predicted, so each user weighs at most `recent` targets in the loss, as
    BSARec and WEARec train. recent = 0: every target."""
    if recent <= 0:
        return tgt
    events = np.arange(start + 1, start + 1 + len(tgt))
    return np.where(events > newest - recent, tgt, 0)


class TrainSet:
    """Fixed training windows: inputs = events[s:e], target at input i = item of event i+1 (0 = none)."""

    def __init__(self, seq: dt.Sequences, split: ev.Split, L: int, q: int, stride: int, age: str, recent: int = 0):
        self.windows, self.targets = [], []
        vp = dict(zip(split.users.tolist(), split.val_pos.tolist()))
        n_targets = 0
        for u in range(len(seq.users)):
            limit = vp.get(u)
            if limit is None:
                continue  # too short to evaluate: also left out of training
            e = limit - 1  # input positions < vp-1 have targets < vp (the validation target stays unseen)
            while e >= 1:
                s = max(0, e - L)
                w = dt.window_features(seq, u, s, e, q)
                if age == "none":
                    w["age_buckets"] = np.ones_like(w["age_buckets"])
                nxt = seq.items[u][s + 1:e + 1]
                tgt = recent_targets(np.where(split.eligible[u][s + 1:e + 1], nxt, 0), s, limit - 1, recent)
                if (tgt >= 2).any():
                    self.windows.append(w)
                    self.targets.append(tgt)
                    n_targets += int((tgt >= 2).sum())
                e -= stride
        self.q, self.L = q, L
        self.n_targets = n_targets

    def __len__(self):
        return len(self.windows)

    def batches(self, batch_size: int, rng: np.random.Generator, dist: distributed.Dist = distributed.Dist()):
        # every rank draws the same permutation (same seed, same draws) and takes its share of each batch
        idx = rng.permutation(len(self.windows))
        for i in range(0, len(idx), batch_size):
            sel = dist.shard(idx[i:i + batch_size])
            yield dt.collate([self.windows[j] for j in sel], self.q, targets=[self.targets[j] for j in sel])


class HistorySet:
    """Whole histories for the stateful kind: one sample per user, every event from the first up to the
    one before the validation target, predicting the next item at every position. Batches group users
    of similar length (at most `events_per_batch` padded positions) so long histories cost no padding."""

    def __init__(self, seq: dt.Sequences, split: ev.Split, q: int, max_history: int = 0, recent: int = 0):
        self.windows, self.targets = [], []
        n_targets = 0
        for u, limit in zip(split.users.tolist(), split.val_pos.tolist()):
            e = limit - 1
            s = max(0, e - max_history) if max_history else 0
            if e < 1:
                continue
            w = dt.window_features(seq, u, s, e, q)
            nxt = seq.items[u][s + 1:e + 1]
            tgt = recent_targets(np.where(split.eligible[u][s + 1:e + 1], nxt, 0), s, e, recent)
            if (tgt >= 2).any():
                self.windows.append(w)
                self.targets.append(tgt)
                n_targets += int((tgt >= 2).sum())
        self.q = q
        self.n_targets = n_targets

    def __len__(self):
        return len(self.windows)

    def batches(self, events_per_batch: int, rng: np.random.Generator, dist: distributed.Dist = distributed.Dist()):
        lens = np.array([len(t) for t in self.targets])
        # sort by length with a random tie order, cut into batches, then shuffle the batches
        order = np.lexsort((rng.random(len(lens)), lens))
        groups, cur = [], []
        for j in order:
            if cur and (len(cur) + 1) * lens[j] > events_per_batch:
                groups.append(cur)
                cur = []
            cur.append(j)
        if cur:
            groups.append(cur)
        for g in rng.permutation(len(groups)):
            sel = dist.shard(np.asarray(groups[g]))
            yield dt.collate([self.windows[j] for j in sel], self.q, targets=[self.targets[j] for j in sel])


def eval_inputs(seq: dt.Sequences, split: ev.Split, which: str, L: int, q: int, age: str):
    """The input of each evaluated user: the newest L events before the target (L = 0: all of them)."""
    pos = split.val_pos if which == "val" else split.test_pos
    wins = []
    for u, p in zip(split.users, pos):
        w = dt.window_features(seq, int(u), max(0, int(p) - L) if L else 0, int(p), q)
        if age == "none":
            w["age_buckets"] = np.ones_like(w["age_buckets"])
        wins.append(w)
    targets = np.asarray([seq.items[u][p] for u, p in zip(split.users, pos)])
    hist = [seq.items[u][:p] for u, p in zip(split.users, pos)]
    return wins, targets, hist


INPUTS = ("item_ids", "event_kinds", "query_tokens", "gap_buckets", "age_buckets")
STATEFUL_INPUTS = INPUTS[:4]  # no age: nothing of an event may depend on later ones


def inputs_of(model) -> tuple[str, ...]:
    return STATEFUL_INPUTS if model.kind == "stateful" else INPUTS


def result_key(model) -> str:
    return "LRU stateful (this model)" if model.kind == "stateful" else "SASRec-style (this model)"


@torch.no_grad()
def user_embeddings(model, wins: list[dict], q: int, batch_size: int = 256) -> np.ndarray:
    """The user vector after each window (for the stateful kind: the whole history, from the zero state)."""
    model.eval()
    names = inputs_of(model)
    device = next(model.parameters()).device
    # users of similar length together, so whole histories are not padded to the longest one
    lens = np.array([len(w["item_ids"]) for w in wins])
    # windowed: input order, as before (its metrics stay bit for bit); stateful: by length
    order = np.argsort(lens, kind="stable") if model.kind == "stateful" else np.arange(len(wins))
    max_positions = 32768 if model.kind == "stateful" else len(wins) * int(lens.max(initial=1))
    out = np.zeros((len(wins), model.cfg.dim), dtype=np.float32)
    # at most batch_size users, and for whole histories at most 32k padded positions, per batch
    groups, cur = [], []
    for j in order:
        if cur and (len(cur) >= batch_size or (len(cur) + 1) * lens[j] > max_positions):
            groups.append(cur)
            cur = []
        cur.append(j)
    if cur:
        groups.append(cur)
    for sel in groups:
        b = dt.collate([wins[j] for j in sel], q)
        x = [torch.from_numpy(b[k]).to(device) for k in names]
        out[sel] = (model.hidden(*x)[:, -1] if model.kind == "stateful" else model(*x)).cpu().numpy()
    return out


def model_metrics(emb: np.ndarray, table: np.ndarray, seq, split, which, mask_history: bool) -> dict:
    scores = emb @ table.T
    return ev.evaluate_scorer(scores, seq, split, which, mask_history)


# --------------------------------------------------------------------------- training
class NextItemLoss(torch.nn.Module):
    """The training objective as one module: DistributedDataParallel synchronises gradients through
    `forward`, while the model trains through `hidden` and `logits`."""

    def __init__(self, model, label_smoothing: float, attribute_loss: float = 0.0):
        super().__init__()
        self.model = model
        self.label_smoothing = label_smoothing
        self.attribute_loss = attribute_loss
        target_attributes = None
        if attribute_loss > 0:
            if model.item_attributes is None:
                raise ValueError("--attribute-loss needs --item-attributes")
            # each item's attribute distribution (its sparse row: weights summing to 1, or empty)
            target_attributes = model.item_attributes.to_dense()
        self.register_buffer("target_attributes", target_attributes, persistent=False)

    def forward(self, tgt, *x):
        h = self.model.hidden(*x)
        m = tgt >= 2
        logits = self.model.logits(h[m])
        loss = F.cross_entropy(logits, tgt[m], label_smoothing=self.label_smoothing)
        if self.target_attributes is not None:
            loss = loss + self.attribute_loss * self.next_attributes_loss(h[m], tgt[m])
        return loss, m

    def next_attributes_loss(self, h, tgt):
        """Side task: the user vector predicts the next item's attributes (a softmax over all attributes
        against the item's attribute weights), scored with the same dot product and scale the item table's
        attribute term is scored with. Rows of targets without attributes are left out."""
        want = self.target_attributes[tgt]
        has = want.sum(dim=1) > 0
        if not bool(has.any()):
            return h.sum() * 0.0
        scores = torch.exp(self.model.log_scale) * torch.matmul(h[has], self.model.attr_emb.weight.t())
        return F.cross_entropy(scores, want[has])


def train(args, dist: distributed.Dist = distributed.Dist()) -> dict | None:
    """Returns the trained model and its metrics on rank 0, None on the other ranks (they only train)."""
    tune_malloc()
    torch.set_num_threads(args.threads)
    seed_all(args.seed)
    log = print if dist.main else (lambda *a, **k: None)
    device = torch.device(args.device if args.device == "cpu" else f"cuda:{dist.local_rank}")
    t_start = time.time()
    if args.dataset == "sim":
        if not (args.catalogue and args.events):
            raise SystemExit("--dataset sim needs --catalogue and --events")
        seq = dt.load_sim(args.catalogue, args.events, args.query_tokens, args.query_buckets,
                          use_searches=not args.no_searches, use_query_text=not args.no_query_text)
    else:
        seq = dt.load(args.dataset)
    plays_only = args.dataset == "sim"
    mask_history = args.mask_history if args.mask_history is not None else args.dataset != "sim"
    split = ev.leave_one_out(seq, plays_only=plays_only)
    q = args.query_tokens
    stateful = args.kind == "stateful"
    # the stateful kind reads whole histories (or the newest --max-history events, for ablations)
    L = args.max_history if stateful else args.max_seq_len
    trainset = (HistorySet(seq, split, q, args.max_history, args.train_recent) if stateful
                else TrainSet(seq, split, L, q, args.stride or L, args.age, args.train_recent))
    t_data = time.time() - t_start
    if dist.world > len(trainset):
        raise SystemExit(f"world size {dist.world} exceeds the {len(trainset)} training "
                         f"{'histories' if stateful else 'windows'} of {seq.name}: every rank needs a share of each "
                         "batch; run fewer processes (--nproc-per-node) or train on more users")
    log(f"[data] {seq.name}: {json.dumps(seq.summary())}; eval users {len(split.users)}; "
          f"train windows {len(trainset)}, targets {trainset.n_targets}; {t_data:.1f}s", flush=True)

    if stateful:
        cfg = StatefulConfig(num_items=seq.num_items, dim=args.dim, layers=args.layers, state_size=args.state_size,
                             query_tokens=q, query_buckets=args.query_buckets, dropout=args.dropout,
                             ffn_mult=args.ffn_mult, r_min=args.r_min, r_max=args.r_max, max_phase=args.max_phase,
                             tail_events=args.tail_events, readout_window=args.readout_window,
                             readout_heads=args.readout_heads)
    else:
        cfg = ModelConfig(num_items=seq.num_items, dim=args.dim, layers=args.layers, heads=args.heads, max_seq_len=L,
                          query_tokens=q, query_buckets=args.query_buckets, dropout=args.dropout,
                          ffn_mult=args.ffn_mult, attn_dropout=args.attn_dropout, pos_mode=args.pos,
                          use_age=args.age == "window")
    attributes = None
    if args.item_attributes:
        try:
            rows, cols, weights, num_attributes = dt.attribute_matrix(seq)
        except ValueError as e:
            raise SystemExit(f"--item-attributes: {e}") from e
        attributes = torch.sparse_coo_tensor(torch.from_numpy(np.stack([rows, cols])), torch.from_numpy(weights),
                                             (seq.num_items, num_attributes), check_invariants=True)
        seq.description += (f"; trained with item attributes ({num_attributes - 1} attribute ids), "
                            "folded into the item table")
        log(f"[data] item attributes: {num_attributes - 1} attributes, {len(rows)} (item, attribute) pairs, "
              f"{len(set(rows.tolist()))} items with attributes", flush=True)
    model = StatefulEncoder(cfg, attributes) if stateful else TasteEncoder(cfg, attributes)
    if device.type != "cpu":
        model.to(device)
        if model.item_attributes is not None:  # a plain tensor attribute, not moved by .to()
            model.item_attributes = model.item_attributes.to(device)
    if dist.world > 1:
        # same initial weights on every rank (DDP also broadcasts rank 0's), different dropout masks
        torch.manual_seed(args.seed + 1000 * dist.rank)
    has_queries = any(qq is not None and qq.any() for qq in seq.queries)
    model.use_queries = has_queries
    try:
        objective = NextItemLoss(model, args.label_smoothing, args.attribute_loss)
    except ValueError as e:
        raise SystemExit(str(e)) from e
    if device.type != "cpu":
        objective.to(device)
    step = dist.wrap(objective, unused_parameters=not has_queries)
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if (p.ndim < 2 or n.startswith("pos_emb") or "rel_bias" in n or "ln" in n or ".lru." in n)
         else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.98))
    rng = np.random.default_rng(args.seed)  # the same on every rank: they draw the same global batches
    val_wins = eval_inputs(seq, split, "val", L, q, args.age)[0] if dist.main else None  # rank 0 evaluates

    best = {"score": -1.0, "epoch": 0, "state": None}
    history = []
    bad = 0
    evaluated = False  # known to every rank (rank 0 alone holds best["state"])
    t_train = time.time()
    steps = 0
    stop = {"why": None}

    def on_signal(signum, frame):  # finish the epoch, then evaluate and export the best model so far
        stop["why"] = f"signal {signum}"

    import signal

    old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    deadline = t_train + args.max_minutes * 60 if args.max_minutes else None
    for epoch in range(1, args.epochs + 1):
        if deadline is not None and time.time() > deadline and evaluated:
            stop["why"] = f"time budget of {args.max_minutes} min"
        stop["why"] = dist.any_stop(stop["why"])
        if stop["why"]:
            log(f"[train] stopping before epoch {epoch}: {stop['why']}", flush=True)
            break
        model.train()
        tot, cnt = 0.0, 0
        for b in trainset.batches(args.events_per_batch if stateful else args.batch_size, rng, dist):
            x = [torch.from_numpy(b[k]).to(device) for k in inputs_of(model)]
            tgt = torch.from_numpy(b["targets"]).to(device)
            loss, m = step(tgt, *x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if args.clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            with torch.no_grad():  # keep the padding rows exactly zero
                for emb in model.padding_embeddings():
                    emb.weight[0].zero_()
            tot += float(loss.detach()) * int(m.sum())
            cnt += int(m.sum())
            steps += 1
        tot, cnt = dist.sum([tot, cnt])  # the epoch's loss over every rank's targets
        rec = {"epoch": epoch, "loss": tot / max(cnt, 1), "time_s": round(time.time() - t_train, 1)}
        last = epoch == args.epochs or dist.any_stop(
            stop["why"] or ("deadline" if deadline is not None and time.time() > deadline else None))
        if epoch % args.eval_every == 0 or last or not evaluated:
            evaluated = True
            if dist.main:
                emb = user_embeddings(model, val_wins, q)
                vm = model_metrics(emb, model.item_table().cpu().numpy(), seq, split, "val", mask_history)
                score = vm["full"]["NDCG@10"]
                rec.update({"val_full_NDCG@10": score, "val_full_HR@10": vm["full"]["HR@10"]})
                if "sampled" in vm:
                    rec["val_sampled_HR@10"] = vm["sampled"]["HR@10"]
                if score > best["score"]:
                    best = {"score": score, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
                    bad = 0
                else:
                    bad += 1
                log("[train] " + " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in rec.items()), flush=True)
            if dist.from_main(bad >= args.patience):
                log(f"[train] early stop: no val NDCG@10 gain in {args.patience} evaluations", flush=True)
                history.append(rec)
                break
        history.append(rec)
    for sig, h in old_handlers.items():
        signal.signal(sig, h)
    train_time = time.time() - t_train
    if not dist.main:
        return None
    model.load_state_dict(best["state"])
    if device.type != "cpu":  # evaluation and export run on the CPU, as without a GPU
        model.to("cpu")
        if model.item_attributes is not None:
            model.item_attributes = model.item_attributes.cpu()
    model.fold_item_attributes()  # from here on a plain model: evaluation and export see the folded table
    model.use_queries = True
    model.eval()

    # ---- final evaluation: best model, baselines, same split
    t_eval = time.time()
    table = model.item_table().numpy()
    results: dict[str, dict] = {}
    for which in ("val", "test"):
        wins, _, _ = eval_inputs(seq, split, which, L, q, args.age)
        emb = user_embeddings(model, wins, q)
        res = {result_key(model): model_metrics(emb, table, seq, split, which, mask_history)}
        res.update(ev.evaluate_baselines(seq, split, which, mask_history))
        results[which] = res
    eval_time = time.time() - t_eval
    metrics = {
        "dataset": seq.name,
        "data": seq.summary(),
        "protocol": {
            "split": "leave-one-out: last eligible event = test, previous = validation (model selection)",
            "eligible_targets": "plays (kind 1/2) with a known item" if plays_only else "every event",
            "full_ranking": "all items" + (", user's earlier items masked" if mask_history else ", no masking"),
            "sampled": "target vs the 99 shipped negatives (LastFM_sample.txt)" if seq.negatives else None,
            "eval_users": int(len(split.users)),
        },
        "results": results,
        "best_epoch": best["epoch"],
        "stopped": stop["why"] or ("early stop (patience)" if bad >= args.patience else "max epochs"),
        "timing_s": {"data": round(t_data, 1), "train": round(train_time, 1), "eval": round(eval_time, 1),
                     "total": round(time.time() - t_start, 1), "epochs_run": len(history),
                     "s_per_epoch": round(train_time / max(len(history), 1), 2)},
        "machine": {"cpus": os.cpu_count(), "torch_threads": args.threads, "python": platform.python_version(),
                    "torch": torch.__version__, "device": args.device},
        "distributed": {**dist.summary(),
                        "global_batch": (f"{args.events_per_batch} padded events" if stateful
                                         else f"{args.batch_size} windows") + ", split across the ranks",
                        "lr_scaled": False},
        "config": {**cfg.to_dict(), **{k: v for k, v in vars(args).items() if k not in ("out",)}},
        "history": history,
    }
    return {"model": model, "seq": seq, "split": split, "metrics": metrics}


# --------------------------------------------------------------------------- reporting
def table_rows(metrics: dict, which: str = "test") -> list[str]:
    cols = ["HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR"]
    lines = []
    for kind in ("sampled", "full"):
        rows = [(name, r[kind]) for name, r in metrics["results"][which].items() if kind in r]
        if not rows:
            continue
        lines.append(f"{which} / {kind} ({rows[0][1]['users']} users)")
        lines.append(f"  {'model':28s} " + " ".join(f"{c:>8s}" for c in cols))
        for name, r in rows:
            lines.append(f"  {name:28s} " + " ".join(f"{r[c]:8.4f}" for c in cols))
    return lines


def card_metrics(metrics: dict) -> dict:
    out = {}
    for which in ("test", "val"):
        for kind in ("sampled", "full"):
            rows = {name: {k: v for k, v in r[kind].items() if k in ("HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR",
                                                                     "HR@20", "NDCG@20", "users")}
                    for name, r in metrics["results"][which].items() if kind in r}
            if rows:
                out[f"{which} / {kind} ranking"] = rows
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m taste_training.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, choices=["lastfm", "ml-latest-small", "sim"])
    ap.add_argument("--out", required=True)
    ap.add_argument("--catalogue", help="sim: catalogue TSV")
    ap.add_argument("--events", help="sim: events JSONL")
    ap.add_argument("--no-searches", action="store_true", help="sim: drop search events (ablation)")
    ap.add_argument("--no-query-text", action="store_true",
                    help="sim: keep search events but zero their query tokens (ablation)")
    ap.add_argument("--kind", choices=["windowed", "stateful"], default="windowed",
                    help="windowed: the transformer over the newest --max-seq-len events; stateful: the LRU whose "
                         "state advances one event at a time, trained on whole histories (docs/model-contract.md)")
    ap.add_argument("--state-size", type=int, default=64, help="stateful: complex state channels per layer")
    ap.add_argument("--r-min", type=float, default=0.5, help="stateful: smallest initial |eigenvalue|")
    ap.add_argument("--r-max", type=float, default=0.99, help="stateful: largest initial |eigenvalue|")
    ap.add_argument("--max-phase", type=float, default=math.pi / 4, help="stateful: largest initial eigenvalue phase")
    ap.add_argument("--readout-window", type=int, default=0,
                    help="stateful: attend over the newest W events' outputs before the read-out (0: last output only)")
    ap.add_argument("--readout-heads", type=int, default=2, help="stateful: heads of that attention")
    ap.add_argument("--tail-events", type=int, default=8,
                    help="stateful: events the updater keeps to re-apply late events exactly (model metadata)")
    ap.add_argument("--max-history", type=int, default=0,
                    help="stateful: train and evaluate on the newest N events only (0 = whole histories; ablation)")
    ap.add_argument("--train-recent", type=int, default=0, metavar="N",
                    help="train on each user's newest N targets only (0: all); older events stay inputs")
    ap.add_argument("--events-per-batch", type=int, default=8192,
                    help="stateful: padded events per training batch (users of similar length are batched)")
    ap.add_argument("--epochs", type=int, default=200, help="maximum epochs (early stopping on validation)")
    ap.add_argument("--seed", type=int, default=42)
    add_shape_arguments(ap)
    ap.add_argument("--dropout", type=float, default=0.3)
    ap.add_argument("--attn-dropout", type=float, default=0.0)
    ap.add_argument("--pos", choices=["newest", "relative"], default="newest",
                    help="position encoding: embedding counted from the newest event, or relative attention bias")
    ap.add_argument("--ffn-mult", type=int, default=4, help="feed-forward width = ffn_mult x dim")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--label-smoothing", type=float, default=0.0)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--stride", type=int, default=0, help="training window stride (default max_seq_len)")
    ap.add_argument("--age", choices=["window", "none"], default="none",
                    help="window: learn age embeddings from ages relative to each training window's newest "
                         "event; none: the age input is kept but its embedding is fixed at zero")
    ap.add_argument("--eval-every", type=int, default=2)
    ap.add_argument("--max-minutes", type=float, default=0,
                    help="training time budget; then the best model so far is evaluated and exported "
                         "(SIGINT/SIGTERM do the same)")
    ap.add_argument("--patience", type=int, default=10, help="evaluations without val gain before stopping")
    ap.add_argument("--mask-history", type=lambda s: s.lower() in ("1", "true", "yes"), default=None)
    ap.add_argument("--threads", type=int, default=2, help="torch threads per process (under torchrun: per rank)")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="where training runs (cuda: under torchrun, the GPU of LOCAL_RANK); evaluation and export "
                         "always run on the CPU")
    ap.add_argument("--dist-backend", choices=distributed.BACKENDS, default="auto",
                    help="under torchrun: the torch.distributed backend (auto: nccl for --device cuda, else gloo)")
    ap.add_argument("--version", help="taste.model_version (default <dataset>-<date>-<hash>)")
    ap.add_argument("--training-data", help="appended to the data description in the model card and metadata "
                    "(e.g. how the simulator files were made)")
    ap.add_argument("--reproduce", help="the command to show in the model card (e.g. a wrapper script); "
                    "the command that actually ran is kept beside it")
    ap.add_argument("--version-prefix", help="first part of the default model version instead of the dataset name")
    ap.add_argument("--item-attributes", action="store_true",
                    help="train with the dataset's item attributes (lastfm: artist tags; ml-latest-small: genres; sim: genre "
                         "and artist) added to each item's vector; folded into the item embedding before evaluation and export")
    ap.add_argument("--attribute-loss", type=float, default=0.0,
                    help="weight of a training-only side task (needs --item-attributes): the user vector predicts the "
                         "next item's attributes; nothing of it is exported")
    ap.add_argument("--no-export", action="store_true")
    ap.add_argument("--checkpoint", help="also save a checkpoint here")
    ap.add_argument("--parity", metavar="JSON", help="also write the parity fixture of the exported model "
                    "(e.g. ../model/testdata/parity.json when --out is ../models/default)")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device (this venv's torch may be the CPU setup)")

    # torchrun's environment (RANK, WORLD_SIZE, ...) makes this one rank of a process group
    dist = distributed.start(os.environ, args.dist_backend, uses_cuda=args.device == "cuda")
    try:
        res = train(args, dist)
        if res is None:  # ranks other than 0 train only; rank 0 evaluates and writes
            return 0
        return write_outputs(args, argv, res)
    finally:
        dist.close()


def write_outputs(args, argv: list[str] | None, res: dict) -> int:
    model, seq, metrics = res["model"], res["seq"], res["metrics"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print("\n".join(table_rows(metrics, "test")))
    print(f"[time] {json.dumps(metrics['timing_s'])}")
    from .export import model_version_for, reproduce_command

    if model.kind == "stateful":
        from .stateful_export import export_model_dir
    else:
        from .export import export_model_dir

    cmd = reproduce_command("taste_training.train", argv)
    if args.reproduce:
        cmd = f"{args.reproduce}\n# which ran: {cmd}"
    metrics["command"] = cmd
    keys = (("kind", "epochs", "seed", "dim", "layers", "state_size", "r_min", "r_max", "max_phase", "tail_events",
             "max_history", "dropout", "ffn_mult", "lr", "weight_decay", "events_per_batch", "label_smoothing")
            if model.kind == "stateful" else
            ("epochs", "seed", "dim", "layers", "heads", "max_seq_len", "dropout", "attn_dropout", "ffn_mult", "pos",
             "lr", "weight_decay", "batch_size", "stride", "age", "label_smoothing"))
    training = {k: metrics["config"][k] for k in keys}
    training.update({"command": cmd,
                     "objective": "next-item prediction at every position, full softmax over the item table",
                     "optimizer": "AdamW", "best_epoch": metrics["best_epoch"], "stopped": metrics["stopped"], "timing_s": metrics["timing_s"],
                     "machine": metrics["machine"], "distributed": metrics["distributed"]})
    training_data = seq.description + (f"; {args.training_data}" if args.training_data else "")
    if args.checkpoint:
        torch.save({"config": model.cfg.to_dict(), "state_dict": model.state_dict(), "metrics": card_metrics(metrics),
                    "training": training, "training_data": training_data}, args.checkpoint)
    if not args.no_export:
        version = args.version or model_version_for(model, args.version_prefix or seq.name, seq.uris)
        r = export_model_dir(model, seq.uris, out, version=version, trained=True, training_data=training_data,
                             training=training, metrics=card_metrics(metrics), command=cmd)
        metrics["export"] = {"model_version": version, **r["checks"]}
        # the exported ONNX model ranks exactly like PyTorch: recompute test metrics with onnxruntime
        metrics["export"]["onnx_test_metrics_match"] = onnx_test_check(out, model, res, args)
        if args.parity and model.kind == "stateful":
            raise SystemExit("--parity: the parity fixture is written for the windowed kind only")
        if args.parity:
            from .export import parity_fixture, repo_relative, write_parity

            write_parity(args.parity, parity_fixture(model, seq.uris, repo_relative(out), version))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")
    print(f"[out] {out}/metrics.json" + ("" if args.no_export else f", model dir {out}"))
    return 0


def onnx_test_check(out: Path, model: TasteEncoder, res: dict, args) -> dict:
    from .onnx_encoder import OnnxEncoder

    seq, split = res["seq"], res["split"]
    q = model.cfg.query_tokens
    if model.kind == "stateful":
        from .stateful_export import OnnxStepEncoder

        # whole histories as the pipeline advances them: steps of at most --tail-events + 8 events
        wins, _, _ = eval_inputs(seq, split, "test", args.max_history, q, args.age)
        emb = OnnxStepEncoder(out / "model.onnx", args.threads).embed_histories(wins, q, chunk=model.cfg.tail_events + 8)
    else:
        wins, _, _ = eval_inputs(seq, split, "test", model.cfg.max_seq_len, q, args.age)
        emb = OnnxEncoder(out / "model.onnx", args.threads).embed_windows(wins, q)
    table = np.fromfile(out / "item_embeddings.f32", dtype="<f4").reshape(seq.num_items, -1)
    mask_history = args.mask_history if args.mask_history is not None else args.dataset != "sim"
    onnx_m = ev.evaluate_scorer(emb @ table.T, seq, split, "test", mask_history)
    torch_m = res["metrics"]["results"]["test"][result_key(model)]
    diff = max(abs(onnx_m[k][m] - torch_m[k][m]) for k in onnx_m for m in ("HR@10", "NDCG@10"))
    return {"max_abs_diff_HR@10_NDCG@10": diff, "onnx_full_HR@10": onnx_m["full"]["HR@10"],
            "onnx_full_NDCG@10": onnx_m["full"]["NDCG@10"]}


if __name__ == "__main__":
    raise SystemExit(main())
