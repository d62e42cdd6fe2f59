"""bench/figures: drawn by bench/make_figures.py from the committed runs' plots, the same pixels when redrawn, and
exactly the ones bench/RESULTS.md links to."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1]
ROOT = BENCH.parent
PNG = b"\x89PNG\r\n\x1a\n"

_spec = importlib.util.spec_from_file_location("bench_make_figures", BENCH / "make_figures.py")
figures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(figures)


def links(markdown: str) -> set[str]:
    return set(re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", markdown))


def test_the_benchmarks_that_the_issue_names_have_their_figure():
    # throughput against its ceiling, freshness histogram, serving latency against load, model cost vs history
    assert {"ingest.png", "freshness.png", "serving-latency.png", "history-cost.png"} <= set(figures.planned())


def test_the_figures_redraw_from_the_committed_runs(tmp_path):
    drawn = figures.draw(tmp_path)
    names = figures.planned()
    assert sorted(p.name for p in drawn) == sorted(names)
    committed = sorted(p.name for p in figures.FIGURES.glob("*.png"))
    assert committed == sorted(names), "bench/figures is stale: run training/.venv/bin/python bench/make_figures.py"
    for name in names:
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG), name
        assert b"matplotlib" not in data and b"Software" not in data, f"{name}: no version or tool in the metadata"
        difference = figures.pixel_difference(tmp_path / name, figures.FIGURES / name)
        assert difference is not None, f"{name}: another size or mode than the committed one: run bench/make_figures.py"
        changed, total = difference
        assert changed <= figures.REDRAW_TOLERANCE * total, \
            f"{name} differs from the committed one in {changed} of {total} pixel bytes: run " \
            "bench/make_figures.py and commit bench/figures"


def test_a_figure_comes_from_the_newest_run_that_holds_its_plot(tmp_path):
    def run(name: str, value: float) -> None:
        (tmp_path / name).mkdir()
        plot = {"id": "x", "kind": "bars", "title": "t", "yLabel": "y", "bars": [{"label": "a", "value": value}]}
        (tmp_path / name / "b.json").write_text(json.dumps({"bench": "b", "figures": [], "plots": [plot]}))

    run("2026-01-01-old", 1)
    run("2026-02-01-new", 2)
    (tmp_path / "2026-03-01-without-plots").mkdir()
    (tmp_path / "2026-03-01-without-plots" / "c.json").write_text(json.dumps({"bench": "c", "figures": []}))
    (source, plot), = figures.newest_plots(tmp_path).values()
    assert source == "2026-02-01-new" and plot["bars"][0]["value"] == 2


@pytest.mark.parametrize("plot, problem", [
    ({"id": "x", "kind": "pie"}, "kind 'pie'"),
    ({"id": "../x", "kind": "bars", "bars": []}, "letters, digits and dashes"),
    ({"id": "x", "kind": "lines", "lines": [{"label": "l", "x": [1, 2], "y": [1]}]}, "2 x and 1 y"),
    ({"id": "x", "kind": "histogram", "edges": [1, 2, 3], "groups": [{"label": "g", "counts": [1]}]}, "1 counts for 3 edges"),
])
def test_a_plot_that_cannot_be_drawn_is_refused_naming_the_file_and_the_problem(tmp_path, plot, problem):
    (tmp_path / "2026-01-01-bad").mkdir()
    (tmp_path / "2026-01-01-bad" / "b.json").write_text(json.dumps({"bench": "b", "figures": [], "plots": [plot]}))
    with pytest.raises(figures.PlotError, match=re.escape(problem)) as error:
        figures.newest_plots(tmp_path)
    assert "2026-01-01-bad/b.json" in str(error.value)


def test_results_md_links_every_figure_and_nothing_else():
    linked = links((BENCH / "RESULTS.md").read_text())
    assert linked == {f"figures/{n}" for n in figures.planned()}


def test_the_readme_links_bench_figures_that_exist():
    linked = {link for link in links((ROOT / "README.md").read_text()) if link.startswith("bench/figures/")}
    assert linked, "the README shows a benchmark figure"
    for link in linked:
        assert (ROOT / link).is_file(), link
