#!/bin/bash
# Before/after in one run: the in-process reference on BEFORE_REV's code (default 8bca4cc, main
# before the fix) and on this tree, alternated, with kserve-orchestrated (this tree) between.
# Heavy (starts servers, ~5 min): flock /tmp/twinserve-heavy.lock bash <this file>
set -u
TREE=$(cd "$(dirname "$0")/../../.." && pwd)
PY=${PY:-/work/main/.venv/bin/python}
OUT=${OUT:-/tmp/tpot}
BEFORE=$(mktemp -d)
git -C "$TREE" archive "${BEFORE_REV:-8bca4cc}" | tar -x -C "$BEFORE"
mkdir -p "$OUT"
export TWINSERVE_CRD_DIR=${TWINSERVE_CRD_DIR:-/work/shared/crds}
T=$TREE/docs/results/inprocess-tpot-2026-12-02/tpot_check.py
# cwd = the code tree: a `python -m` child puts its cwd first on sys.path, before PYTHONPATH
run() { (cd "$1" && PYTHONPATH=$1 timeout -s TERM 150 "$PY" "$T" --stacks "$2" --n 8 \
         --label "$3" --out "$OUT/r5-$4.json"); }
run "$BEFORE" inprocess before 1
run "$TREE" inprocess after 2
run "$TREE" kserve-orchestrated after 3
run "$BEFORE" inprocess before 4
run "$TREE" inprocess after 5
rm -rf "$BEFORE"
