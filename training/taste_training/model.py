"""SASRec-style sequence encoder for `taste.model.v1` (docs/model-contract.md).

Inputs (all int64): item_ids [B,T], event_kinds [B,T], query_tokens [B,T,Q], gap_buckets [B,T],
age_buckets [B,T]; padding positions have event_kinds == 0. Output: user_embedding [B,D], L2-normalised,
in the space of the (tied) item table, so `user · item_row` ranks next items.

Written by hand (no nn.MultiheadAttention / fused fast paths) so the ONNX graph is plain ops.
Padding safety: attention masks use a large finite negative number (never -inf) and every position
may always attend to itself, so a fully padded row never yields NaN.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import features as fx

MASK_VALUE = -1e4  # finite (never -inf) and fp16-safe; exp(-1e4 - max) is exactly 0 in float32


def add_shape_arguments(ap) -> None:
    """The encoder's shape options, shared by train and export (an argparse parser)."""
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--max-seq-len", type=int, default=fx.DEFAULT_MAX_SEQ_LEN)
    ap.add_argument("--query-tokens", type=int, default=fx.DEFAULT_QUERY_TOKENS)
    ap.add_argument("--query-buckets", type=int, default=fx.DEFAULT_QUERY_BUCKETS)


@dataclass
class ModelConfig:
    num_items: int
    dim: int = 64
    layers: int = 2
    heads: int = 2
    max_seq_len: int = fx.DEFAULT_MAX_SEQ_LEN
    query_tokens: int = fx.DEFAULT_QUERY_TOKENS
    query_buckets: int = fx.DEFAULT_QUERY_BUCKETS
    dropout: float = 0.2
    ffn_mult: int = 4
    attn_dropout: float = 0.0  # dropout on attention probabilities
    # "newest": a learned position embedding added to the input, counted from the newest event.
    # "relative": a learned per-head attention bias by distance (query index - key index), so that a
    #   position sees its past the same way in training (every position predicts) and in serving
    #   (only the newest position is read). Both are independent of left padding.
    pos_mode: str = "newest"
    # age buckets are relative to the newest event; a model trained by predicting at every position
    # sees them relative to the window's end instead, so it may be trained without them: use_age=False
    # keeps the input (the contract) but fixes its embedding at zero.
    use_age: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


class ItemTable:
    """The tied item table both model kinds share: item embeddings, optional attribute side information
    for training, the exported table and the training logits."""

    def init_item_table(self, num_items: int, dim: int, item_attributes: torch.Tensor | None) -> None:
        """item_attributes: optional side information for training, a sparse [num_items, num_attributes]
        matrix whose rows weight each item's attributes (rows sum to 1 or are empty). An item's vector is
        then its own embedding plus the weighted attribute embeddings; `fold_item_attributes` bakes that
        sum into the item embedding before export, so the exported graph and contract do not change."""
        self.item_emb = nn.Embedding(num_items, dim, padding_idx=0)
        self.attr_emb: nn.Embedding | None = None
        self.item_attributes: torch.Tensor | None = None
        if item_attributes is not None:
            if item_attributes.shape[0] != num_items:
                raise ValueError(f"item_attributes has {item_attributes.shape[0]} rows, the model {num_items} items")
            self.item_attributes = item_attributes.coalesce()
            self.attr_emb = nn.Embedding(item_attributes.shape[1], dim)

    def item_vectors(self, item_ids: torch.Tensor) -> torch.Tensor:
        if self.item_attributes is None:
            return self.item_emb(item_ids)
        return F.embedding(item_ids, self.item_weights(), padding_idx=0)

    # -- item table ---------------------------------------------------------------------------
    def item_weights(self) -> torch.Tensor:
        """Every item's vector [num_items, D]: its embedding, plus its attributes' when there are any."""
        if self.item_attributes is None or self.attr_emb is None:
            return self.item_emb.weight
        return self.item_emb.weight + torch.sparse.mm(self.item_attributes, self.attr_emb.weight)

    def fold_item_attributes(self) -> None:
        """Bake the attribute term into the item embedding (outputs unchanged); the model is then plain."""
        if self.item_attributes is None:
            return
        with torch.no_grad():
            self.item_emb.weight.copy_(self.item_weights())
        self.item_attributes = None
        self.attr_emb = None

    def item_table(self) -> torch.Tensor:
        """The exported item table: the tied item embedding, with rows 0 (<pad>) and 1 (<unk>) zero."""
        w = self.item_weights().detach().clone()
        w[:2] = 0
        return w

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Training logits over all items for user vectors h [...,D] (rows 0/1 never win)."""
        w = self.item_weights()
        s = torch.exp(self.log_scale) * torch.matmul(h, w.t())
        reserved = torch.arange(w.shape[0], device=w.device) < 2
        return s.masked_fill(reserved, MASK_VALUE)


class CausalSelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        if dim % heads:
            raise ValueError("dim must be divisible by heads")
        self.heads = heads
        self.head_dim = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.attn_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        # x [B,T,D]; allowed [B,1,T,T] bool (query i may attend key j); bias [1,H,T,T] or None
        b, t, d = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [B,H,T,hd]
        scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(self.head_dim))
        if bias is not None:
            scores = scores + bias
        scores = torch.where(allowed, scores, torch.full_like(scores, MASK_VALUE))
        attn = torch.softmax(scores, dim=-1)
        attn = self.attn_drop(attn)
        y = torch.matmul(attn, v).transpose(1, 2).reshape(b, t, d)
        return self.out(y)


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float, ffn_mult: int, attn_dropout: float = 0.0,
                 rel_positions: int = 0):
        super().__init__()
        self.heads = heads
        self.rel_bias = nn.Embedding(rel_positions, heads) if rel_positions else None
        self.ln1 = nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, heads, attn_dropout)
        self.ln2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn_mult * dim), nn.GELU(), nn.Linear(ffn_mult * dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x, allowed, mask, dist=None):
        bias = None
        if self.rel_bias is not None:
            bias = self.rel_bias(dist).permute(2, 0, 1).unsqueeze(0)  # [1,H,T,T]
        x = x + self.drop(self.attn(self.ln1(x), allowed, bias))
        x = x + self.drop(self.ffn(self.ln2(x)))
        return x * mask


class TasteEncoder(ItemTable, nn.Module):
    kind = "windowed"

    def __init__(self, cfg: ModelConfig, item_attributes: torch.Tensor | None = None):
        """item_attributes: optional side information for training, a sparse [num_items, num_attributes]
        matrix whose rows weight each item's attributes (rows sum to 1 or are empty). An item's vector is
        then its own embedding plus the weighted attribute embeddings; `fold_item_attributes` bakes that
        sum into the item embedding before export, so the exported graph and contract do not change."""
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.init_item_table(cfg.num_items, d, item_attributes)
        self.kind_emb = nn.Embedding(fx.NUM_EVENT_KINDS, d, padding_idx=0)
        self.query_emb = nn.Embedding(cfg.query_buckets, d, padding_idx=0)
        self.gap_emb = nn.Embedding(fx.NUM_BUCKETS, d, padding_idx=0)
        self.age_emb = nn.Embedding(fx.NUM_BUCKETS, d, padding_idx=0)
        if cfg.pos_mode not in ("newest", "relative"):
            raise ValueError(f"pos_mode must be 'newest' or 'relative', not {cfg.pos_mode!r}")
        self.pos_emb = nn.Embedding(cfg.max_seq_len, d) if cfg.pos_mode == "newest" else None  # 0 = newest
        self.emb_drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.dropout, cfg.ffn_mult, cfg.attn_dropout,
                                          cfg.max_seq_len if cfg.pos_mode == "relative" else 0) for _ in range(cfg.layers))
        self.ln_f = nn.LayerNorm(d)
        self.proj = nn.Linear(d, d)
        # training-only temperature of the softmax over items (does not change rankings)
        self.log_scale = nn.Parameter(torch.tensor(math.log(10.0)))
        # training-only shortcut for data without searches (all query tokens 0 → the query term is 0
        # anyway); always True for export and inference
        self.use_queries = True
        self.reset_parameters()
        self.freeze_unused()

    def freeze_unused(self):
        if not self.cfg.use_age:
            with torch.no_grad():
                self.age_emb.weight.zero_()
            self.age_emb.weight.requires_grad_(False)

    def reset_parameters(self):
        for emb in (self.item_emb, self.kind_emb, self.query_emb, self.gap_emb, self.age_emb, self.pos_emb, self.attr_emb):
            if emb is None:
                continue
            nn.init.normal_(emb.weight, std=0.05)
            if emb.padding_idx is not None:
                with torch.no_grad():
                    emb.weight[emb.padding_idx].zero_()

    # -- pieces -------------------------------------------------------------------------------
    def embed(self, item_ids, event_kinds, query_tokens, gap_buckets, age_buckets):
        mask = (event_kinds > 0).to(torch.float32).unsqueeze(-1)  # [B,T,1]
        # positions counted from the newest real event: 0 = newest (independent of padding)
        m = (event_kinds > 0).to(torch.int64)
        rel = m.sum(dim=1, keepdim=True) - torch.cumsum(m, dim=1)  # [B,T]
        rel = torch.clamp(rel, 0, self.cfg.max_seq_len - 1) * m
        items = self.item_vectors(item_ids)
        x = items * math.sqrt(self.cfg.dim) + self.kind_emb(event_kinds)
        if self.use_queries:
            # The <pad> token's row is zero (padding_idx, kept zero in training), so a plain sum over the
            # Q slots adds the real tokens only: no [B,T,Q,D] mask multiply in the exported graph.
            qsum = self.query_emb(query_tokens).sum(dim=2)
            qcnt = torch.clamp((query_tokens > 0).sum(dim=2, keepdim=True).to(torch.float32), min=1.0)
            x = x + qsum / qcnt
        x = x + self.gap_emb(gap_buckets) + self.age_emb(age_buckets)
        if self.pos_emb is not None:
            x = x + self.pos_emb(rel)
        return self.emb_drop(x) * mask, mask

    @staticmethod
    def attention_mask(event_kinds: torch.Tensor) -> torch.Tensor:
        t = event_kinds.shape[1]
        idx = torch.arange(t, device=event_kinds.device)
        causal = idx.unsqueeze(0) <= idx.unsqueeze(1)  # [T(query),T(key)]: key j <= query i
        eye = idx.unsqueeze(0) == idx.unsqueeze(1)
        valid_key = (event_kinds > 0).unsqueeze(1)  # [B,1,T]
        allowed = (causal.unsqueeze(0) & valid_key) | eye.unsqueeze(0)  # [B,T,T]
        return allowed.unsqueeze(1)  # [B,1,T,T]

    def distances(self, event_kinds: torch.Tensor) -> torch.Tensor:
        """[T,T] query index - key index, clipped to 0..max_seq_len-1 (the same for any left padding)."""
        idx = torch.arange(event_kinds.shape[1], device=event_kinds.device)
        return torch.clamp(idx.unsqueeze(1) - idx.unsqueeze(0), 0, self.cfg.max_seq_len - 1)

    def hidden(self, item_ids, event_kinds, query_tokens, gap_buckets, age_buckets):
        """Per-position user vectors [B,T,D] (L2-normalised)."""
        x, mask = self.embed(item_ids, event_kinds, query_tokens, gap_buckets, age_buckets)
        allowed = self.attention_mask(event_kinds)
        dist = self.distances(event_kinds) if self.cfg.pos_mode == "relative" else None
        for blk in self.blocks:
            x = blk(x, allowed, mask, dist)
        h = self.proj(self.ln_f(x))
        return F.normalize(h, p=2.0, dim=-1, eps=1e-12)

    def forward(self, item_ids, event_kinds, query_tokens, gap_buckets, age_buckets):
        """user_embedding [B,D] = the vector at the newest (last) position."""
        x, mask = self.embed(item_ids, event_kinds, query_tokens, gap_buckets, age_buckets)
        allowed = self.attention_mask(event_kinds)
        dist = self.distances(event_kinds) if self.cfg.pos_mode == "relative" else None
        for blk in self.blocks:
            x = blk(x, allowed, mask, dist)
        last = x[:, -1, :]
        h = self.proj(self.ln_f(last))
        return F.normalize(h, p=2.0, dim=-1, eps=1e-12)

    def padding_embeddings(self):
        return (self.item_emb, self.kind_emb, self.query_emb, self.gap_emb, self.age_emb)
