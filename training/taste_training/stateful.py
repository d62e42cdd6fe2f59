"""The stateful model kind: a user's taste as a fixed-size state advanced one event at a time.

Each layer is a linear recurrent unit (LRU: a diagonal complex recurrence h_t = λ ⊙ h_{t-1} + γ ⊙ B x_t,
read out as Re(C h_t) + D ⊙ x_t), written with real/imaginary pairs so the ONNX graph is plain
real ops, followed by a position-wise feed-forward block. Nothing in an event's features depends on
later events (no position-from-newest, no age relative to the newest event), so the state after n
events is a function of those n events alone, and a user's whole history costs the same per event
whatever its length.

The recurrence is computed with a log-depth (Hillis-Steele) scan over the events of a call, from
an initial state: training runs it over whole histories from the zero state; the exported step
graph runs it over the new events (plus the short tail the updater re-applies) from the stored
state. Both are the same arithmetic, so chunked steps equal one pass over all events.

Padding (event_kinds == 0, on the left as in `taste.model.v1` batches) leaves the state unchanged.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import features as fx
from .model import ItemTable

KIND = "stateful"


@dataclass
class StatefulConfig:
    num_items: int
    dim: int = 64
    layers: int = 2
    state_size: int = 64  # complex channels per layer; the stored state is layers x 2 x state_size floats
    query_tokens: int = fx.DEFAULT_QUERY_TOKENS
    query_buckets: int = fx.DEFAULT_QUERY_BUCKETS
    dropout: float = 0.3
    ffn_mult: int = 4
    # ring initialisation of the eigenvalues λ: |λ| uniform in [r_min, r_max], phase in [0, max_phase]
    r_min: float = 0.5
    r_max: float = 0.99
    max_phase: float = math.pi / 4
    # the longest run of events one step call may carry (the step graph's direct form costs K^2 per
    # channel); callers split longer runs into several steps, which give the same state
    max_step_events: int = 64
    # the events the updater keeps in the stored tail to re-apply late events exactly
    tail_events: int = 8
    # 0: the embedding reads the last position's output. w > 0: it first attends over the outputs of
    # the newest w events (w <= tail_events + 1, so every step call holds them: the stored tail is
    # re-applied in every call), a constant cost per event like the recurrence itself
    readout_window: int = 0
    readout_heads: int = 2

    @property
    def state_dim(self) -> int:
        return self.layers * 2 * self.state_size

    def to_dict(self) -> dict:
        return {"kind": KIND, **asdict(self)}


def scan_levels(n: int) -> int:
    """Doubling levels a scan over n events needs."""
    return max(0, math.ceil(math.log2(max(n, 1))))


def shift_right(x: torch.Tensor, s: int, fill: float) -> torch.Tensor:
    """x [B,T,N] moved s places later along T, `fill` entering on the left. Correct for any T, even T < s,
    with T taken from the tensor (dynamic in the exported graph)."""
    t = x.shape[1]
    return F.pad(x, (0, 0, s, 0), value=fill)[:, :t]


def linear_scan(a_re, a_im, b_re, b_im, levels: int):
    """Inclusive scan of h_t = a_t h_{t-1} + b_t over T (complex, as re/im pairs), from h_{-1} = 0.
    Returns (A, H): A_t = a_t ... a_0 (what multiplies an initial state) and H_t."""
    s = 1
    for _ in range(levels):
        pa_re, pa_im = shift_right(a_re, s, 1.0), shift_right(a_im, s, 0.0)
        pb_re, pb_im = shift_right(b_re, s, 0.0), shift_right(b_im, s, 0.0)
        b_re, b_im = b_re + a_re * pb_re - a_im * pb_im, b_im + a_re * pb_im + a_im * pb_re
        a_re, a_im = a_re * pa_re - a_im * pa_im, a_re * pa_im + a_im * pa_re
        s *= 2
    return a_re, a_im, b_re, b_im


class LRU(nn.Module):
    def __init__(self, dim: int, n: int, r_min: float, r_max: float, max_phase: float):
        super().__init__()
        u1, u2 = torch.rand(n), torch.rand(n)
        nu = -0.5 * torch.log(u1 * (r_max ** 2 - r_min ** 2) + r_min ** 2)  # |λ| = exp(-nu)
        theta = max_phase * u2
        self.nu_log = nn.Parameter(torch.log(nu))
        self.theta_log = nn.Parameter(torch.log(theta.clamp_min(1e-4)))
        self.gamma_log = nn.Parameter(torch.log(torch.sqrt(1 - torch.exp(-2 * nu))))
        self.b_re = nn.Parameter(torch.randn(n, dim) / math.sqrt(2 * dim))
        self.b_im = nn.Parameter(torch.randn(n, dim) / math.sqrt(2 * dim))
        self.c_re = nn.Parameter(torch.randn(dim, n) / math.sqrt(n))
        self.c_im = nn.Parameter(torch.randn(dim, n) / math.sqrt(n))
        self.d = nn.Parameter(torch.randn(dim) * 0.1)

    def eigen(self):
        mod = torch.exp(-torch.exp(self.nu_log))
        ang = torch.exp(self.theta_log)
        return mod * torch.cos(ang), mod * torch.sin(ang)

    def forward(self, x, mask, h0_re, h0_im, levels: int | None):
        """x [B,T,H], mask [B,T,1] (1 = event, left-padded), h0 [B,N] → y [B,T,H] and the state after
        every position (re, im) [B,T,N]. levels=None: the direct form (below); else a scan of that depth."""
        lam_re, lam_im = self.eigen()
        g = torch.exp(self.gamma_log)
        u_re = torch.matmul(x, self.b_re.t()) * g * mask
        u_im = torch.matmul(x, self.b_im.t()) * g * mask
        if levels is None:
            h_re, h_im = self._direct(u_re, u_im, mask, h0_re, h0_im)
        else:
            # padding: a = 1 (state kept), b = 0
            a_re = mask * lam_re + (1 - mask)
            a_im = mask * lam_im
            A_re, A_im, h_re, h_im = linear_scan(a_re, a_im, u_re, u_im, levels)
            h0r, h0i = h0_re.unsqueeze(1), h0_im.unsqueeze(1)
            h_re = h_re + A_re * h0r - A_im * h0i
            h_im = h_im + A_re * h0i + A_im * h0r
        y = torch.matmul(h_re, self.c_re.t()) - torch.matmul(h_im, self.c_im.t()) + self.d * x
        return y, h_re, h_im

    def _powers(self, exponent):
        """λ^e for a float tensor of exponents e [...]: (re, im) [..., N]."""
        log_mod = -torch.exp(self.nu_log)
        ang = torch.exp(self.theta_log)
        e = exponent.unsqueeze(-1)
        mod = torch.exp(e * log_mod)
        return mod * torch.cos(e * ang), mod * torch.sin(e * ang)

    def _direct(self, u_re, u_im, mask, h0_re, h0_im):
        """h_t = λ^(c_t) h0 + sum_{s<=t} λ^(t-s) u_s, with c_t the events up to t: a few large ops instead of
        the scan's many small ones, for the short runs of one step call (cost K^2 N per user)."""
        k = u_re.shape[1]
        idx = torch.arange(k, dtype=torch.float32, device=u_re.device)
        dist = idx.unsqueeze(1) - idx.unsqueeze(0)  # [K(t), K(s)]
        causal = (dist >= 0).to(torch.float32).unsqueeze(-1)
        p_re, p_im = self._powers(dist.clamp_min(0))  # [K,K,N]
        p_re, p_im = p_re * causal, p_im * causal
        # [N,K,K] @ [N,K,B] -> [N,K,B]
        ur, ui = u_re.permute(2, 1, 0), u_im.permute(2, 1, 0)
        pr, pi = p_re.permute(2, 0, 1), p_im.permute(2, 0, 1)
        h_re = (torch.matmul(pr, ur) - torch.matmul(pi, ui)).permute(2, 1, 0)
        h_im = (torch.matmul(pr, ui) + torch.matmul(pi, ur)).permute(2, 1, 0)
        # events applied up to t (left padding: 0 on padding positions)
        count = torch.cumsum(mask.squeeze(-1), dim=1)  # [B,K]
        q_re, q_im = self._powers(count)  # [B,K,N]
        h0r, h0i = h0_re.unsqueeze(1), h0_im.unsqueeze(1)
        return h_re + q_re * h0r - q_im * h0i, h_im + q_re * h0i + q_im * h0r


class LRUBlock(nn.Module):
    def __init__(self, cfg: StatefulConfig):
        super().__init__()
        d = cfg.dim
        self.ln1 = nn.LayerNorm(d)
        self.lru = LRU(d, cfg.state_size, cfg.r_min, cfg.r_max, cfg.max_phase)
        self.ln2 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, cfg.ffn_mult * d), nn.GELU(), nn.Linear(cfg.ffn_mult * d, d))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, mask, h0_re, h0_im, levels):
        y, h_re, h_im = self.lru(self.ln1(x), mask, h0_re, h0_im, levels)
        x = x + self.drop(y)
        x = x + self.drop(self.ffn(self.ln2(x)))
        return x * mask, h_re, h_im


class LocalReadout(nn.Module):
    """Causal attention of every position over the outputs of its newest `window` events (itself
    included), added to its own output. Padding (mask 0) is never attended to."""

    def __init__(self, dim: int, heads: int, window: int, dropout: float):
        super().__init__()
        self.ln = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.heads, self.window = heads, window
        self.drop = nn.Dropout(dropout)

    def forward(self, x, mask):
        b, t, d = x.shape
        h, dh = self.heads, d // self.heads
        q, k, v = self.qkv(self.ln(x)).reshape(b, t, 3, h, dh).permute(2, 0, 3, 1, 4)  # each [B,H,T,dh]
        scores = q @ k.transpose(-1, -2) / math.sqrt(dh)  # [B,H,T,T]
        i = torch.arange(t, device=x.device).unsqueeze(1)
        j = torch.arange(t, device=x.device).unsqueeze(0)
        allowed = (j <= i) & (j > i - self.window)  # [T,T]
        allowed = allowed.unsqueeze(0) & (mask.squeeze(-1) > 0).unsqueeze(1)  # [B,T,T]: real keys only
        scores = scores.masked_fill(~allowed.unsqueeze(1), -1e9)
        attn = torch.softmax(scores, dim=-1)
        y = (attn @ v).transpose(1, 2).reshape(b, t, d)
        return (x + self.drop(self.out(y))) * mask


class StatefulEncoder(ItemTable, nn.Module):
    """Inputs per event: item_ids, event_kinds, query_tokens [.,.,Q], gap_buckets (time since the
    user's previous event, whichever call it came in). State: [B, layers * 2 * state_size]."""

    kind = KIND

    def __init__(self, cfg: StatefulConfig, item_attributes: torch.Tensor | None = None):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.init_item_table(cfg.num_items, d, item_attributes)
        self.kind_emb = nn.Embedding(fx.NUM_EVENT_KINDS, d, padding_idx=0)
        self.query_emb = nn.Embedding(cfg.query_buckets, d, padding_idx=0)
        self.gap_emb = nn.Embedding(fx.NUM_BUCKETS, d, padding_idx=0)
        self.emb_drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(LRUBlock(cfg) for _ in range(cfg.layers))
        if cfg.readout_window > cfg.tail_events + 1:
            raise ValueError(f"readout_window {cfg.readout_window} needs tail_events >= {cfg.readout_window - 1}")
        self.readout = LocalReadout(d, cfg.readout_heads, cfg.readout_window, cfg.dropout) if cfg.readout_window > 0 else None
        self.ln_f = nn.LayerNorm(d)
        self.proj = nn.Linear(d, d)
        self.log_scale = nn.Parameter(torch.tensor(math.log(10.0)))
        self.use_queries = True
        for emb in (self.item_emb, self.kind_emb, self.query_emb, self.gap_emb, self.attr_emb):
            if emb is None:
                continue
            nn.init.normal_(emb.weight, std=0.05)
            if emb.padding_idx is not None:
                with torch.no_grad():
                    emb.weight[emb.padding_idx].zero_()

    def padding_embeddings(self):
        return (self.item_emb, self.kind_emb, self.query_emb, self.gap_emb)

    def zero_state(self, batch: int, device: torch.device | None = None) -> torch.Tensor:
        return torch.zeros(batch, self.cfg.state_dim, device=device)

    def embed(self, item_ids, event_kinds, query_tokens, gap_buckets):
        mask = (event_kinds > 0).to(torch.float32).unsqueeze(-1)
        items = self.item_vectors(item_ids)
        x = items * math.sqrt(self.cfg.dim) + self.kind_emb(event_kinds) + self.gap_emb(gap_buckets)
        if self.use_queries:
            qsum = self.query_emb(query_tokens).sum(dim=2)  # the <pad> row is zero: no mask needed
            qcnt = torch.clamp((query_tokens > 0).sum(dim=2, keepdim=True).to(torch.float32), min=1.0)
            x = x + qsum / qcnt
        return self.emb_drop(x) * mask, mask

    def run(self, state, item_ids, event_kinds, query_tokens, gap_buckets, levels: int | None = -1):
        """Per-position outputs x [B,T,H] and per-layer per-position states [(re, im) [B,T,N]].
        levels: -1 = a scan as deep as T needs (training), None = the direct form (the step graph)."""
        n = self.cfg.state_size
        if levels == -1:
            levels = scan_levels(item_ids.shape[1])
        x, mask = self.embed(item_ids, event_kinds, query_tokens, gap_buckets)
        st = state.reshape(state.shape[0], self.cfg.layers, 2, n)
        states = []
        for i, blk in enumerate(self.blocks):
            x, h_re, h_im = blk(x, mask, st[:, i, 0], st[:, i, 1], levels)
            states.append((h_re, h_im))
        if self.readout is not None:
            x = self.readout(x, mask)
        return x, states

    def read_out(self, x):
        return F.normalize(self.proj(self.ln_f(x)), p=2.0, dim=-1, eps=1e-12)

    def hidden(self, item_ids, event_kinds, query_tokens, gap_buckets):
        """Training: the user vector after every event of whole histories from the zero state [B,T,D]."""
        x, _ = self.run(self.zero_state(item_ids.shape[0], item_ids.device), item_ids, event_kinds, query_tokens, gap_buckets)
        return self.read_out(x)

    def step(self, state, item_ids, event_kinds, query_tokens, gap_buckets, checkpoint_at, levels: int | None = -1):
        """The step graph. state [B,S]; events [B,K] left-padded; checkpoint_at [B] int64 = how many of this
        call's events the returned checkpoint has applied (0 = the input state, all = the state after the
        call). Returns (checkpoint [B,S], user_embedding [B,D] after all the call's events)."""
        x, states = self.run(state, item_ids, event_kinds, query_tokens, gap_buckets, levels)
        k = item_ids.shape[1]
        n_real = (event_kinds > 0).to(torch.int64).sum(dim=1)
        # position k - n_real + c of [initial state, state after position 0, ...]; padding keeps the state,
        # so for c = 0 this is the input state whatever the padding
        idx = (k - n_real + checkpoint_at).clamp(0, k).reshape(-1, 1, 1)
        b = state.shape[0]
        st = state.reshape(b, self.cfg.layers, 2, self.cfg.state_size)
        parts = []
        for i, (h_re, h_im) in enumerate(states):
            for j, h in enumerate((h_re, h_im)):
                full = torch.cat([st[:, i, j].unsqueeze(1), h], dim=1)  # [B,K+1,N]
                parts.append(torch.gather(full, 1, idx.expand(-1, 1, self.cfg.state_size)).squeeze(1))
        checkpoint = torch.cat(parts, dim=1)
        return checkpoint, self.read_out(x[:, -1, :])

    def forward(self, state, item_ids, event_kinds, query_tokens, gap_buckets, checkpoint_at):
        """The exported step graph: the direct form, for the short runs of events one step carries."""
        return self.step(state, item_ids, event_kinds, query_tokens, gap_buckets, checkpoint_at, levels=None)
