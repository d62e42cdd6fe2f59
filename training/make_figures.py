"""Draws training/figures/*.png from the result files in training/results/ (no number typed by hand).

    training/.venv/bin/python training/make_figures.py       # the figures alone
    training/.venv/bin/python training/make_results_md.py    # the figures, then RESULTS.md linking them

What it draws, all from the committed JSON:
- ranking-<dataset>.png: HR@K and NDCG@K (K = 1, 5, 10, 20) of the chosen models (mean over their seeds, bars
  min to max), the baselines of the same run, and the published numbers (HR/NDCG@5 and @10 only).
- curves/<run>.png: per training run, the training loss and the validation HR@10 / NDCG@10 per epoch (the runs
  record no validation loss and no training-split ranking, so those curves are not drawn).
- history-length.png: quality against history length, where the results hold it: the simulator ablation
  (history cut to the newest n plays; users by how many plays they had) and the LastFM stateful model trained
  on the newest 50 events against whole histories.

The output is deterministic (Agg backend, matplotlib's own fonts, no timestamp or version in the PNG metadata):
regenerating from the same results gives the same bytes, which tests/test_figures.py checks.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIGURES = HERE / "figures"
KS = (1, 5, 10, 20)
# The simulator ablation's history cuts, in the order of the x axis.
CUTS = ("last 1 plays", "last 3 plays", "last 5 plays", "last 10 plays")
HISTORY_LASTFM = ("lastfm-stateful-dropout0.5-attributes", "lastfm-stateful-dropout0.5-attributes-history50-noexport")


def ours(results: dict) -> dict:
    """The run's own model in its results (the key names the kind: SASRec-style or LRU stateful)."""
    return next(r for k, r in results.items() if k.endswith("(this model)"))


def ranking_name(dataset: str) -> str:
    return f"ranking-{dataset}.png"


def curves_name(run: str) -> str:
    return f"curves/{run}.png"


HISTORY_NAME = "history-length.png"


def load(names: list[str]) -> dict[str, dict]:
    return {n: json.loads((HERE / "results" / f"{n}.json").read_text()) for n in names
            if (HERE / "results" / f"{n}.json").exists()}


def group_runs(runs: dict[str, dict], base: str) -> list[dict]:
    """A configuration's runs: the base (seed 42) and its -seedN twins."""
    return [m for n, m in runs.items() if n == base or (n.startswith(base + "-seed") and n[len(base) + 5:].split("-")[0].isdigit())]


def planned(run_names: list[str], groups: list[tuple[str, str, str]]) -> list[str]:
    """The figures draw() writes, as paths relative to training/figures (no matplotlib needed)."""
    runs = load(run_names)
    datasets = list(dict.fromkeys(ds for _, ds, base in groups if group_runs(runs, base)))
    out = [ranking_name(ds) for ds in datasets]
    out += [curves_name(n) for n, m in runs.items() if m.get("history")]
    if (HERE / "results" / "sim-search-ablation.json").exists():
        out.append(HISTORY_NAME)
    return out


def deterministic_pyplot():
    """matplotlib with the Agg backend and fixed settings: the same data draws the same pixels anywhere."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcdefaults()
    plt.rcParams.update({"font.family": "DejaVu Sans", "font.size": 9, "axes.grid": True, "grid.alpha": 0.3,
                         "axes.spines.top": False, "savefig.dpi": 100})
    return plt


def save_png(plt, fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # No "Software" (matplotlib's version) and no time in the PNG: the bytes depend on the data only.
    fig.savefig(path, format="png", metadata={"Software": None}, pil_kwargs={"optimize": False})
    plt.close(fig)
    return path


# The share of pixel bytes a redraw of the same inputs may change. On another CPU a few anti-aliased
# edge pixels move: numpy's SIMD paths (log10 on a log-scale axis) round differently in the last bit
# (bench/figures/ingest.png: 12 of 1.2 M bytes, at its right spine, between two machines of this
# project). A stale figure (a new run, another value) changes hundreds of bytes or more: one bar
# moved by 0.5% changed 324, a test HR@10 moved by 2% changed 3,817.
REDRAW_TOLERANCE = 1e-4


def pixel_difference(drawn: Path, committed: Path) -> tuple[int, int] | None:
    """(pixel bytes that differ, pixel bytes in all) of two PNGs as decoded, whatever row filters and zlib
    made of them (Pillow picks a filter per row, so one changed pixel can change a whole encoded row);
    None when their size or mode differ."""
    import numpy as np
    from PIL import Image

    with Image.open(drawn) as a, Image.open(committed) as b:
        if (a.size, a.mode) != (b.size, b.mode):
            return None
        pixels_a, pixels_b = np.asarray(a), np.asarray(b)
    return int(np.count_nonzero(pixels_a != pixels_b)), int(pixels_a.size)


def draw_ranking(plt, dataset: str, groups: list[tuple[str, str, str]], runs: dict[str, dict], published: dict,
                 published_best: dict, out: Path) -> Path:
    chosen = [(label, group_runs(runs, base)) for label, ds, base in groups if ds == dataset and group_runs(runs, base)]
    kinds = [k for k in ("full", "sampled") if any(k in ours(ms[0]["results"]["test"]) for _, ms in chosen)]
    fig, axes = plt.subplots(len(kinds), 2, figsize=(10, 3.4 * len(kinds) + 0.9), squeeze=False)
    for row, kind in enumerate(kinds):
        for col, metric in enumerate(("HR", "NDCG")):
            ax = axes[row][col]
            for i, (label, ms) in enumerate(chosen):
                rs = [ours(m["results"]["test"])[kind] for m in ms if kind in ours(m["results"]["test"])]
                ys = [[r[f"{metric}@{k}"] for r in rs] for k in KS]
                mean = [sum(v) / len(v) for v in ys]
                err = [[m - min(v) for m, v in zip(mean, ys)], [max(v) - m for m, v in zip(mean, ys)]]
                ax.errorbar(KS, mean, yerr=err, marker="o", capsize=3, color=f"C{i}",
                            label=f"{label} ({len(rs)} seed{'s' if len(rs) > 1 else ''})")
            baseline_run = chosen[0][1][0]["results"]["test"]
            for j, (name, style) in enumerate((("popularity", ":"), ("last-item kNN", "--"))):
                r = baseline_run[name][kind]
                ax.plot(KS, [r[f"{metric}@{k}"] for k in KS], linestyle=style, color="0.45", marker=".",
                        label=f"{name} (same split)")
            markers = iter("s^Dv")
            for j, (name, r) in enumerate(published.get(dataset, {}).get(kind, {}).items()):
                ks = [k for k in KS if f"{metric}@{k}" in r]
                ax.plot(ks, [r[f"{metric}@{k}"] for k in ks], linestyle="none", marker=next(markers), markersize=7,
                        color=f"C{j + 3}", label=f"published: {name}")
            best = published_best.get((dataset, kind))
            if best:
                ax.plot([10], [best[1] if metric == "HR" else best[2]], linestyle="none", marker="*", markersize=11,
                        color="C6", label=f"best published: {best[0]}")
            ax.set_xticks(KS)
            ax.set_xlabel("K")
            ax.set_ylabel(f"{metric}@K")
            ax.set_title(f"{dataset}, {kind} ranking: {metric}@K (test)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, 0.06 + 0.1 / len(kinds), 1, 1))
    return save_png(plt, fig, out / ranking_name(dataset))


def draw_curves(plt, run: str, m: dict, out: Path) -> Path:
    history = m["history"]
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(epochs, [h["loss"] for h in history], color="C0", label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss", color="C0")
    right = ax.twinx()
    right.grid(False)
    for key, color, label in (("val_full_NDCG@10", "C1", "validation NDCG@10 (full)"),
                              ("val_full_HR@10", "C2", "validation HR@10 (full)")):
        if any(key in h for h in history):
            right.plot([h["epoch"] for h in history if key in h], [h[key] for h in history if key in h],
                       color=color, label=label)
    right.set_ylabel("validation (full ranking)")
    ax.axvline(m["best_epoch"], color="0.5", linestyle="--", linewidth=1, label=f"best epoch {m['best_epoch']}")
    handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
    right.legend(handles, [h.get_label() for h in handles], loc="center right", fontsize=7)
    ax.set_title(run, fontsize=8)
    fig.tight_layout()
    return save_png(plt, fig, out / curves_name(run))


def draw_history_length(plt, runs: dict[str, dict], out: Path) -> Path:
    ablation = json.loads((HERE / "results" / "sim-search-ablation.json").read_text())
    lastfm = [runs.get(n) for n in HISTORY_LASTFM]
    panels = 3 if all(lastfm) else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 3.8))
    ax = axes[0]
    labels = [c.replace(" plays", "") for c in CUTS] + ["whole history"]
    for i, (arm, cuts) in enumerate(ablation["cold_start_truncated"].items()):
        ys = [cuts[c]["NDCG@10"] for c in CUTS] + [ablation["ranking"][arm]["all"]["NDCG@10"]]
        ax.plot(range(len(labels)), ys, marker="o", color=f"C{i}", label=arm)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("history given to the model (newest n plays, searches among them kept)")
    ax.set_ylabel("NDCG@10 (test)")
    ax.set_title(f"simulator ablation, {next(iter(ablation['ranking'].values()))['all']['users']} users", fontsize=9)
    ax.legend(fontsize=7)

    ax = axes[1]
    slices = list(ablation["slices"])
    arms = list(ablation["ranking"])
    width = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        ax.bar([s + (i - (len(arms) - 1) / 2) * width for s in range(len(slices))],
               [ablation["ranking"][arm][s]["NDCG@10"] for s in slices], width, color=f"C{i}", label=arm)
    ax.set_xticks(range(len(slices)), [f"{s}\n({ablation['slices'][s]} users)" for s in slices])
    ax.set_xlabel("users by plays before their test target")
    ax.set_ylabel("NDCG@10 (test)")
    ax.set_title("simulator ablation, by history length", fontsize=9)
    ax.legend(fontsize=7)

    if panels == 3:
        ax = axes[2]
        whole, newest50 = (ours(m["results"]["test"])["full"] for m in lastfm)
        for i, metric in enumerate(("HR@10", "NDCG@10")):
            ax.bar([i - 0.2, i + 0.2], [newest50[metric], whole[metric]], 0.4, color=["C4", "C5"],
                   label=["newest 50 events", "whole histories"] if i == 0 else None)
        ax.set_xticks([0, 1], ["HR@10", "NDCG@10"])
        ax.set_ylabel("full ranking (test)")
        ax.set_title("LastFM, LRU stateful, seed 42: trained and\nevaluated on the newest 50 events vs whole histories",
                     fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_png(plt, fig, out / HISTORY_NAME)


def draw(run_names: list[str], groups: list[tuple[str, str, str]], published: dict, published_best: dict,
         out: Path = FIGURES) -> list[Path]:
    """Draws every figure of planned() into out; returns their paths."""
    plt = deterministic_pyplot()
    runs = load(run_names)
    names = planned(run_names, groups)
    # A run dropped from the list takes its figure with it.
    for stale in [*out.glob("*.png"), *out.glob("curves/*.png")]:
        if stale.relative_to(out).as_posix() not in names:
            stale.unlink()
    written = []
    for name in names:
        if name.startswith("ranking-"):
            dataset = name[len("ranking-"):-len(".png")]
            written.append(draw_ranking(plt, dataset, groups, runs, published, published_best, out))
        elif name.startswith("curves/"):
            run = name[len("curves/"):-len(".png")]
            written.append(draw_curves(plt, run, runs[run], out))
        else:
            written.append(draw_history_length(plt, runs, out))
    return written


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else FIGURES
    sys.path.insert(0, str(HERE))
    import make_results_md as results  # the run list and the published numbers live there

    paths = draw([n for n, _ in results.RUNS], results.V2_GROUPS, results.PUBLISHED, results.PUBLISHED_BEST, out)
    print(f"wrote {len(paths)} figures to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
