#!/usr/bin/env bash
# The CPU proxy tables the open issues ask for, in issue order, on two
# lanes (one per core), every run resumable; runs/ does not survive a new
# machine, so finished runs and the latest checkpoint of unfinished ones are
# archived to recipes/results/ (tools/archive_runs.py) and restored from it.
#
#   bash tools/proxy_tables.sh restore   # recipes/results/<table> -> runs/<table> (missing ones only)
#   bash tools/proxy_tables.sh start [1|2]  # both lanes (or one) in the background (nice 19), logs in runs/
#   bash tools/proxy_tables.sh archive   # runs/<table> -> recipes/results/<table>, then commit it
#   bash tools/proxy_tables.sh report    # the comparison's report once every run is in
#
# Lane 1: GM-NAS (#14) -> DCNAS (#17; its spos and dcnas runs are the
# comparison's) -> the comparison's single-path methods (#18).
# Lane 2: inter-choice (#16) -> bfloat16 SPOS (#15; float32 = the
# comparison's spos runs) -> the comparison's DARTS family and inter-choice
# methods (#18), then lane 1's single-path runs from the other end (seeds and
# methods reversed). The comparison processes share runs/compare; each run is
# claimed with a lock file (nb201_compare.claim), so no run is trained twice.
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=2
TABLES=(gmnas_proxy60 interchoice_proxy dcnas_proxy bf16 compare)
SEEDS="0 1 2"
P="nice -n 19 python"

lane1() {
  $P recipes/nb201_gmnas.py --preset cifar10-subset --seeds $SEEDS --methods gm exhaustive random one-shot one-shot-equal \
    --output runs/gmnas_proxy60 --resume --verbose 0
  $P recipes/nb201_dcnas.py --preset cifar10-subset --seeds $SEEDS --variants spos dcnas --output runs/dcnas_proxy --resume --verbose 0
  $P recipes/nb201_dcnas.py --preset cifar10-subset --seeds $SEEDS --output runs/dcnas_proxy --resume --verbose 0
  $P recipes/nb201_compare.py --preset cifar10-subset --seeds $SEEDS --methods spos pa da pada gmnas dcnas \
    --output runs/compare --resume --reuse runs/dcnas_proxy --verbose 0
}

lane2() {
  $P recipes/nb201_interchoice.py --preset cifar10-subset --seeds $SEEDS --output runs/interchoice_proxy --resume --verbose 0
  $P recipes/nb201_rank.py --preset cifar10-subset --seeds $SEEDS --dtype-policy mixed_bfloat16 --output runs/bf16 --resume --verbose 0
  $P recipes/nb201_compare.py --preset cifar10-subset --seeds $SEEDS \
    --methods darts darts-pt pt-mag interchoice-bias interchoice-split --output runs/compare --resume --verbose 0
  $P recipes/nb201_compare.py --preset cifar10-subset --seeds 2 1 0 --methods gmnas pada da pa dcnas spos \
    --output runs/compare --resume --reuse runs/dcnas_proxy --verbose 0
}

case "${1:-}" in
  restore)
    for t in "${TABLES[@]}"; do
      if [ -d "recipes/results/$t" ] && [ ! -d "runs/$t" ]; then mkdir -p runs && cp -r "recipes/results/$t" "runs/$t"; fi
    done ;;
  start)  # both lanes, or only the one given: start 1 | start 2
    mkdir -p runs
    for lane in ${2:-1 2}; do
      nohup bash -c "$(declare -f lane$lane); P='$P'; SEEDS='$SEEDS'; lane$lane" > runs/lane$lane.log 2>&1 &
      echo "lane $lane started: runs/lane$lane.log"
    done ;;
  archive)
    for t in "${TABLES[@]}"; do
      if [ -d "runs/$t" ]; then python tools/archive_runs.py "runs/$t" "recipes/results/$t" | tail -1; fi
    done ;;
  report)
    python recipes/nb201_compare.py --preset cifar10-subset --seeds $SEEDS --output runs/compare --resume --verbose 0 ;;
  *)
    echo "usage: bash tools/proxy_tables.sh restore|start|archive|report" >&2; exit 2 ;;
esac
