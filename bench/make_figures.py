"""Draws bench/figures/*.png from the committed benchmark runs in bench/results/ (no number typed by hand).

    training/.venv/bin/python bench/make_figures.py            # rewrite bench/figures/
    training/.venv/bin/python bench/make_figures.py OUT_DIR    # draw elsewhere (the test compares)

A benchmark that has something to show writes `plots` into its JSON (bench/lib/report.ts, `Report.plot`):
lines (a cost or latency against a swept quantity), bars (a figure beside the ceilings measured in the same
run) or a histogram (pre-binned latency distributions). Each plot id becomes bench/figures/<id>.png, drawn
from the newest committed run (bench/results/<run>/, runs sorted by name, which starts with the date) that
holds it. The PNGs are deterministic (training/make_figures.py's settings: Agg, fixed fonts, no version or
time in the metadata), so redrawing from the same files gives the same bytes; bench/tests/test_figures.py
checks that, and that bench/RESULTS.md links every figure.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
FIGURES = BENCH / "figures"


def _training_figures():
    """training/make_figures.py, loaded by path: it has this file's module name."""
    spec = importlib.util.spec_from_file_location("training_make_figures", ROOT / "training" / "make_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_training = _training_figures()
deterministic_pyplot, save_png = _training.deterministic_pyplot, _training.save_png
# What "the same figure when redrawn" means, for bench/tests as for training/tests.
pixel_difference, REDRAW_TOLERANCE = _training.pixel_difference, _training.REDRAW_TOLERANCE

KINDS = ("lines", "bars", "histogram")


class PlotError(ValueError):
    """A plot in a run file that cannot be drawn: names the file and the plot."""


def newest_plots(results: Path = RESULTS) -> dict[str, tuple[str, dict]]:
    """Each plot id → (the run it comes from, the plot), from the newest run that holds it."""
    plots: dict[str, tuple[str, dict]] = {}
    runs = sorted(p for p in results.iterdir() if p.is_dir()) if results.exists() else []
    for run in runs:
        for path in sorted(run.glob("*.json")):
            data = json.loads(path.read_text())
            for plot in data.get("plots", []):
                check(plot, f"{run.name}/{path.name}")
                plots[plot["id"]] = (run.name, plot)
    return dict(sorted(plots.items()))


def check(plot: dict, where: str) -> None:
    name = f"{where}: plot {plot.get('id')!r}"
    if plot.get("kind") not in KINDS:
        raise PlotError(f"{name}: kind {plot.get('kind')!r} is not one of {', '.join(KINDS)}")
    if not isinstance(plot.get("id"), str) or not plot["id"].replace("-", "").isalnum():
        raise PlotError(f"{name}: the id must be letters, digits and dashes (it names the PNG)")
    if plot["kind"] == "lines":
        for line in plot.get("lines", []):
            if len(line["x"]) != len(line["y"]):
                raise PlotError(f"{name}: line {line['label']!r} has {len(line['x'])} x and {len(line['y'])} y values")
    if plot["kind"] == "histogram":
        for group in plot["groups"]:
            if len(group["counts"]) != len(plot["edges"]) - 1:
                raise PlotError(f"{name}: group {group['label']!r} has {len(group['counts'])} counts for "
                                f"{len(plot['edges'])} edges")


def planned(results: Path = RESULTS) -> list[str]:
    """The PNG names draw() writes (no matplotlib needed)."""
    return [f"{plot_id}.png" for plot_id in newest_plots(results)]


def _title(fig, plot: dict, run: str) -> None:
    """Title top left, the settings and the run as a caption at the bottom: both across the whole figure."""
    fig.suptitle(plot["title"], x=0.01, y=0.99, ha="left", va="top", fontsize=10)
    caption = f"{plot['caption']}. Run {run}." if plot.get("caption") else f"Run {run}."
    fig.text(0.01, 0.01, caption, fontsize=7, color="0.35", ha="left", va="bottom", wrap=True)


def draw_lines(plt, plot: dict, run: str, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    for i, line in enumerate(plot["lines"]):
        ax.plot(line["x"], line["y"], marker="o", color=f"C{i}", label=line["label"])
        if line.get("low") and line.get("high"):
            ax.fill_between(line["x"], line["low"], line["high"], color=f"C{i}", alpha=0.2, linewidth=0)
    if plot.get("xLog"):
        ax.set_xscale("log")
        ax.set_xticks(plot["lines"][0]["x"], [f"{x:g}" for x in plot["lines"][0]["x"]])
    if plot.get("yLog"):
        ax.set_yscale("log")
    ax.set_xlabel(plot["xLabel"])
    ax.set_ylabel(plot["yLabel"])
    ax.legend(fontsize=8, frameon=False)
    _title(fig, plot, run)
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    return save_png(plt, fig, out / f"{plot['id']}.png")


def draw_bars(plt, plot: dict, run: str, out: Path) -> Path:
    bars = plot["bars"]
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * len(bars) + 1.8))
    ys = list(range(len(bars)))[::-1]
    for y, bar in zip(ys, bars):
        err = None
        if "low" in bar and "high" in bar:
            err = [[bar["value"] - bar["low"]], [bar["high"] - bar["value"]]]
        ax.barh(y, bar["value"], xerr=err, capsize=3, color="0.8" if bar.get("ceiling") else "C0",
                hatch="//" if bar.get("ceiling") else None, edgecolor="0.4")
        ax.annotate(f"{bar['value']:,.0f}", xy=(bar.get("high", bar["value"]), y), xytext=(6, 0), textcoords="offset points",
                    va="center", fontsize=8)
    ax.set_yticks(ys, [b["label"] for b in bars], fontsize=8)
    ax.set_xlabel(plot["yLabel"] + (" (log scale)" if plot.get("valueLog") else ""))
    ax.set_title("hatched: ceilings measured in the same run; blue: taste", fontsize=8, loc="right", color="0.35")
    top = max(b.get("high", b["value"]) for b in bars)
    if plot.get("valueLog"):
        # Ceilings can be ×30 the figure: a log axis keeps the small bars readable.
        ax.set_xscale("log")
        ax.set_xlim(min(b.get("low", b["value"]) for b in bars) / 3, top * 4)
    else:
        ax.set_xlim(0, top * 1.18)
    _title(fig, plot, run)
    fig.tight_layout(rect=(0, 0.09, 1, 0.94))
    return save_png(plt, fig, out / f"{plot['id']}.png")


def draw_histogram(plt, plot: dict, run: str, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    edges = plot["edges"]
    for i, group in enumerate(plot["groups"]):
        total = group["total"] or 1
        shares = [c / total for c in group["counts"]]
        ax.stairs(shares, edges, color=f"C{i}", linewidth=1.6,
                  label=f"{group['label']} (n={group['total']:,}; p50 {group['p50']:g}, p99 {group['p99']:g} ms)")
        for q, style in (("p99", "--"),):
            ax.axvline(group[q], color=f"C{i}", linestyle=style, linewidth=0.8)
    if plot.get("xLog"):
        ax.set_xscale("log")
    ax.set_xlabel(plot["xLabel"] + "; dashed: p99")
    ax.set_ylabel("share of events per bin")
    ax.legend(fontsize=7, frameon=False, loc="upper right")
    _title(fig, plot, run)
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    return save_png(plt, fig, out / f"{plot['id']}.png")


DRAW = {"lines": draw_lines, "bars": draw_bars, "histogram": draw_histogram}


def draw(out: Path = FIGURES, results: Path = RESULTS) -> list[Path]:
    """Draws every plot of the newest runs into out, removes PNGs no run holds; returns the paths."""
    plt = deterministic_pyplot()
    plots = newest_plots(results)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.png"):
        if stale.stem not in plots:
            stale.unlink()
    return [DRAW[plot["kind"]](plt, plot, run, out) for run, plot in plots.values()]


def main(argv: list[str]) -> int:
    if "--help" in argv or "-h" in argv:
        print(__doc__)
        return 0
    out = Path(argv[1]) if len(argv) > 1 else FIGURES
    try:
        paths = draw(out)
    except PlotError as error:
        print(f"bench/make_figures.py: {error}", file=sys.stderr)
        return 2
    print(f"wrote {len(paths)} figures to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
