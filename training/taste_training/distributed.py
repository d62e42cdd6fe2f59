"""Training in several processes under torchrun (DistributedDataParallel): who this process is, and
the few agreements the ranks need.

Every rank reads the whole dataset and builds the same training examples; each global batch (the
one a single process would take, `--batch-size` windows or `--events-per-batch` padded events) is
split across the ranks, DDP averages the gradients, and every rank takes the same optimizer step.
So the world size changes how the work is shared, not the optimization: same batch, same learning
rate, same number of steps per epoch. Rank 0 alone evaluates, decides early stopping, logs and
writes; the ranks agree on stopping with one small collective per decision.

Without torchrun's environment (WORLD_SIZE unset) nothing here touches torch.distributed, and the
trainer runs exactly as a single process always has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

BACKENDS = ("auto", "gloo", "nccl")


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None  # None: not under torchrun, no process group

    @property
    def main(self) -> bool:
        return self.rank == 0

    def summary(self) -> dict:
        return {"world_size": self.world, "backend": self.backend or "none (single process)"}

    @property
    def collective_device(self) -> torch.device:
        """Where the small agreement tensors live: NCCL reduces only CUDA tensors, gloo CPU ones."""
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")

    def shard(self, sel: np.ndarray) -> np.ndarray:
        """This rank's part of one global batch: every world-th example from its rank on. A batch smaller
        than the world is repeated cyclically, so every rank takes part in every step (DDP's gradient
        all-reduce needs all of them)."""
        if self.world == 1:
            return sel
        if len(sel) < self.world:
            sel = np.resize(sel, self.world)
        return sel[self.rank::self.world]

    def any_stop(self, why: str | None) -> str | None:
        """A reason to stop if any rank has one (a signal, a passed deadline), so all ranks stop together."""
        if self.world == 1:
            return why
        flag = torch.tensor([0 if why is None else 1 + self.rank], dtype=torch.int64, device=self.collective_device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        if flag.item() == 0:
            return None
        return why or f"rank {flag.item() - 1} stopped"

    def from_main(self, flag: bool) -> bool:
        """Rank 0's decision (it alone evaluates) on every rank."""
        if self.world == 1:
            return flag
        t = torch.tensor([int(flag)], dtype=torch.int64, device=self.collective_device)
        torch.distributed.broadcast(t, src=0)
        return bool(t.item())

    def sum(self, values: list[float]) -> list[float]:
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.collective_device)
        torch.distributed.all_reduce(t)
        return t.tolist()

    def wrap(self, module: torch.nn.Module, unused_parameters: bool) -> torch.nn.Module:
        """DDP over the training step (parameters broadcast from rank 0 at construction). unused_parameters:
        some trainable parameter takes no gradient (e.g. the query embedding on data without searches);
        DDP then looks for them after every backward pass, which costs a graph traversal per step."""
        if self.world == 1:
            return module
        return torch.nn.parallel.DistributedDataParallel(module, find_unused_parameters=unused_parameters)

    def close(self) -> None:
        if self.backend is not None and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def choose_backend(flag: str, uses_cuda: bool) -> str:
    if flag not in BACKENDS:
        raise SystemExit(f"--dist-backend {flag}: expected one of {', '.join(BACKENDS)}")
    if flag == "nccl" and not uses_cuda:
        raise SystemExit("--dist-backend nccl needs a CUDA run (--device cuda); CPU training uses gloo")
    if flag == "auto":
        return "nccl" if uses_cuda else "gloo"
    return flag


def start(env: Mapping[str, str], backend_flag: str = "auto", uses_cuda: bool = False) -> Dist:
    """Join torchrun's process group when its environment is there (RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR/PORT); otherwise a single process."""
    if "WORLD_SIZE" not in env:
        return Dist()
    backend = choose_backend(backend_flag, uses_cuda)
    rank, world, local_rank = int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", "0"))
    if uses_cuda:
        torch.cuda.set_device(local_rank)
    torch.distributed.init_process_group(backend=backend, rank=rank, world_size=world)
    return Dist(rank=rank, world=world, local_rank=local_rank, backend=backend)
