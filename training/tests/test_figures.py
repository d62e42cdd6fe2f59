"""The figures of RESULTS.md: drawn by make_figures.py from the committed results, the same pixels when redrawn, and
exactly the ones RESULTS.md and the README link to."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TRAINING = ROOT / "training"
sys.path.insert(0, str(TRAINING))

import make_figures  # noqa: E402
import make_results_md as results  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def links(markdown: str) -> set[str]:
    return set(re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", markdown))


def test_the_figures_redraw_from_the_committed_results(tmp_path):
    names = make_figures.planned([n for n, _ in results.RUNS], results.V2_GROUPS)
    drawn = make_figures.draw([n for n, _ in results.RUNS], results.V2_GROUPS, results.PUBLISHED,
                              results.PUBLISHED_BEST, tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in drawn) == sorted(names)
    # One per dataset, one per training run that kept its per-epoch history, one for history length.
    assert {"ranking-lastfm.png", "ranking-ml-latest-small.png", "ranking-sim.png", "history-length.png"} <= set(names)
    runs_with_history = [n for n, _ in results.RUNS
                         if (TRAINING / "results" / f"{n}.json").exists() and '"history"' in
                         (TRAINING / "results" / f"{n}.json").read_text()]
    assert sorted(n for n in names if n.startswith("curves/")) == sorted(f"curves/{n}.png" for n in runs_with_history)
    committed = sorted(p.relative_to(make_figures.FIGURES).as_posix() for p in make_figures.FIGURES.rglob("*.png"))
    assert committed == sorted(names), "training/figures is stale: run training/make_results_md.py"
    for name in names:
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG), name
        assert b"matplotlib" not in data and b"Software" not in data, f"{name}: no version or tool in the metadata"
        difference = make_figures.pixel_difference(tmp_path / name, make_figures.FIGURES / name)
        assert difference is not None, f"{name}: another size or mode: run training/make_results_md.py"
        changed, total = difference
        assert changed <= make_figures.REDRAW_TOLERANCE * total, \
            f"{name} differs from the committed one in {changed} of {total} pixel bytes: run " \
            "training/make_results_md.py and commit training/figures"


def test_results_md_links_every_figure_and_nothing_else():
    names = make_figures.planned([n for n, _ in results.RUNS], results.V2_GROUPS)
    linked = links((TRAINING / "RESULTS.md").read_text())
    assert linked == {f"figures/{n}" for n in names}


def test_the_readme_links_figures_that_exist():
    linked = {link for link in links((ROOT / "README.md").read_text()) if link.startswith("training/figures/")}
    assert linked, "the README's model section shows a figure"
    for link in linked:
        assert (ROOT / link).is_file(), link
