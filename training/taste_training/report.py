"""Render metrics.json files written by taste_training.train as markdown tables.

    python -m taste_training.report <run_dir_or_metrics.json> [...] [--split test]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

COLS = ["HR@5", "HR@10", "NDCG@5", "NDCG@10", "MRR"]


def render(path: Path, split: str) -> str:
    p = path / "metrics.json" if path.is_dir() else path
    m = json.loads(p.read_text())
    t = m["timing_s"]
    out = [f"### {m['dataset']} — {split} ({m['protocol']['eval_users']} users)", "",
           f"Command: `{m.get('command', '?')}`  ",
           f"Best epoch {m['best_epoch']} of {t['epochs_run']} run ({m.get('stopped', '?')}); "
           f"train {t['train']} s ({t['s_per_epoch']} s/epoch), total {t['total']} s on "
           f"{m['machine']['cpus']} CPUs, {m['machine']['torch_threads']} torch threads.", ""]
    for kind in ("sampled", "full"):
        rows = [(n, r[kind]) for n, r in m["results"][split].items() if kind in r]
        if not rows:
            continue
        desc = m["protocol"]["sampled"] if kind == "sampled" else m["protocol"]["full_ranking"]
        out += [f"{kind}: {desc}", "", "| model | " + " | ".join(COLS) + " |", "|---|" + "---:|" * len(COLS)]
        out += [f"| {n} | " + " | ".join(f"{r[c]:.4f}" for c in COLS) + " |" for n, r in rows]
        out.append("")
    if "export" in m:
        e = m["export"]
        out.append(f"Exported `{e['model_version']}`: ORT vs torch max diff {e['max_abs_diff_ort_vs_torch']:.1e}; "
                   f"test metrics recomputed with onnxruntime differ by "
                   f"{e['onnx_test_metrics_match']['max_abs_diff_HR@10_NDCG@10']:.1e}.")
        out.append("")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--split", default="test", choices=["test", "val"])
    a = ap.parse_args(argv)
    print("\n".join(render(Path(r), a.split) for r in a.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
