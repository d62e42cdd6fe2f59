#!/usr/bin/env bash
# Issue 19 on the device's GPU: the stateful (v2) model's LastFM and ml-latest-small runs trained to
# convergence, every run beside the others on one GPU. Each stateful run makes one change against
# its dataset's chosen configuration, except lf-readout32-state128 (two, each tried alone on the
# CPU); ml-transformer-len200 is the windowed kind's run at 200 events. On this 2-core machine each
# run takes 10-60 min (on ml-latest-small, 2.7x the epochs raised validation but not test:
# training/RESULTS.md): here the seeds and levers run at once, chosen by validation NDCG@10 (the
# test split is reported, never used to choose).
#
#   bash training/gpu-sweep.sh --dry-run        here: every run for 1 epoch on the CPU, 2 at a time
#   bash training/gpu-sweep.sh --device         there, from .gpu/remote.sh in /tmp/gpu: into $OUT/sweep
#
# Env: SWEEP_MINUTES (training budget per run; device default 5), SWEEP_PARALLEL (runs at once;
# device default 17: every run at once), SWEEP_ONLY (a regex of run names to keep). The datasets come from
# TASTE_DATASETS (bench/gpu.sh --pack carries ../shared/datasets as shared/datasets).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

# name | arguments on top of the dataset's chosen configuration (RESULTS.md: the stateful rows)
LASTFM_BASE="--dataset lastfm --kind stateful --epochs 300 --item-attributes --label-smoothing 0.1 --events-per-batch 2048 --lr 2e-3 --patience 8 --dropout 0.5"
ML_BASE="--dataset ml-latest-small --kind stateful --epochs 300 --label-smoothing 0.1 --events-per-batch 4096 --lr 2e-3 --patience 8 --dropout 0.5"
RUNS=(
  "ml-base-s42|$ML_BASE --seed 42"
  "ml-base-s1|$ML_BASE --seed 1"
  "ml-base-s2|$ML_BASE --seed 2"
  "ml-state128|$ML_BASE --seed 42 --state-size 128"
  "ml-dropout0.3|$ML_BASE --seed 42 --dropout 0.3"
  "ml-dropout0.2|$ML_BASE --seed 42 --dropout 0.2"
  "ml-lr1e-3|$ML_BASE --seed 42 --lr 1e-3"
  "ml-history200|$ML_BASE --seed 42 --max-history 200"
  "ml-readout32|$ML_BASE --seed 42 --readout-window 32 --tail-events 32"
  "ml-transformer-len200|--dataset ml-latest-small --epochs 300 --dropout 0.5 --pos relative --label-smoothing 0.1 --patience 10 --max-seq-len 200 --seed 42"
  "lf-base-s42|$LASTFM_BASE --seed 42"
  "lf-wd0.1|$LASTFM_BASE --seed 42 --weight-decay 0.1"
  "lf-epb512|$LASTFM_BASE --seed 42 --events-per-batch 512"
  "lf-lr1e-3|$LASTFM_BASE --seed 42 --lr 1e-3"
  "lf-dropout0.6|$LASTFM_BASE --seed 42 --dropout 0.6"
  "lf-readout32-state128|$LASTFM_BASE --seed 42 --readout-window 32 --tail-events 32 --state-size 128"
)

mode="${1:-}"
case "$mode" in
  --dry-run)
    py=.venv/bin/python; device=cpu; minutes="${SWEEP_MINUTES:-0.3}"; parallel="${SWEEP_PARALLEL:-2}"
    out="${OUT:-$(mktemp -d)}/sweep"; extra="--epochs 1 --eval-every 1"
    ;;
  --device)
    : "${OUT:?--device writes into \$OUT (set by the device tool)}"
    py=python3; device=cuda; minutes="${SWEEP_MINUTES:-5}"; parallel="${SWEEP_PARALLEL:-17}"
    out="$OUT/sweep"; extra=""
    ;;
  *)
    sed -n '2,15p' "${BASH_SOURCE[0]##*/}" | sed 's/^# \{0,1\}//'
    [[ "$mode" == -h || "$mode" == --help ]] || exit 2
    exit 0
    ;;
esac
mkdir -p "$out"
"$py" -c 'import torch, numpy; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "numpy", numpy.__version__)' \
  > "$out/python.txt" 2>&1
cat "$out/python.txt"

started=$(date +%s)
# A TERM (an outer timeout) reaches the trainers too: each finishes its epoch and writes its
# metrics.json. Wait for them, so the caller's next step (a tar of the results) sees every run.
trap 'echo "sweep: TERM after $(( $(date +%s) - started )) s; waiting for the runs to write their metrics"; wait' TERM
if [[ "$device" == cuda ]]; then
  # The nccl path of distributed.py under torchrun, on the one GPU there is: process group, device
  # placement and the run to the end. One rank only (NCCL refuses two ranks on one GPU), so the
  # collectives themselves, which a world of 1 skips, stay unrun.
  # shellcheck disable=SC2086
  ( "$py" -m torch.distributed.run --standalone --nproc-per-node 1 -m taste_training.train $LASTFM_BASE \
      --seed 42 --epochs 4 --device cuda --threads 1 --no-export --out "$out/ddp-nccl-1rank" \
      > "$out/ddp-nccl-1rank.log" 2>&1
    echo "ddp-nccl-1rank exit $? after $(( $(date +%s) - started )) s" ) &
fi
for run in "${RUNS[@]}"; do
  name="${run%%|*}"; args="${run#*|}"
  [[ -n "${SWEEP_ONLY:-}" && ! "$name" =~ $SWEEP_ONLY ]] && continue
  while (( $(jobs -rp | wc -l) >= parallel )); do sleep 1; done
  # shellcheck disable=SC2086 # the arguments are word lists on purpose
  ( "$py" -m taste_training.train $args $extra --device "$device" --threads 1 --max-minutes "$minutes" \
      --no-export --out "$out/$name" > "$out/$name.log" 2>&1
    echo "$name exit $? after $(( $(date +%s) - started )) s" ) &
done
wait
# One line a run: the validation figure that chooses, then the test figures, then how it stopped.
"$py" - "$out" <<'EOF'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
print(f"{'run':24s} {'val NDCG@10':>11s} {'test HR@10':>10s} {'test NDCG@10':>12s} {'sampled HR@10':>13s} {'epoch':>5s}  stopped")
for m in sorted(out.glob("*/metrics.json")):
    d = json.loads(m.read_text())
    ours = lambda which: next(iter(d["results"][which].values()))
    val, test = ours("val"), ours("test")
    sampled = test.get("sampled", {}).get("HR@10")
    print(f"{m.parent.name:24s} {val['full']['NDCG@10']:11.4f} {test['full']['HR@10']:10.4f} {test['full']['NDCG@10']:12.4f} "
          f"{'' if sampled is None else f'{sampled:.4f}':>13s} {d['best_epoch']:5d}  {d['stopped']} "
          f"({d['timing_s']['epochs_run']} epochs, {d['timing_s']['s_per_epoch']} s each)")
EOF
