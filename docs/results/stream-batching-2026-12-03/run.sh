#!/usr/bin/env bash
# `run.sh STACK MS`: one fresh STACK (rayserve or kserve-orchestrated) under scenario.yaml with
# generate.stream_batch_ms = MS (0: every delta sent on, as before; 50: the new default). Each
# call is its own heavy run; README.md lists the order they ran in. Run from the repo root;
# writes reports/stream-batching/<stack>-<ms>[-<tag>]/.
set -u
export PYTHONPATH=$PWD TWINSERVE_CRD_DIR=${TWINSERVE_CRD_DIR:-/work/shared/crds}
PY=${PY:-/work/main/.venv/bin/python}
OUT=${OUT:-reports/stream-batching}
stack=$1 ms=$2 tag=${3:+-$3}
name=$stack-$ms$tag
mkdir -p "$OUT"
echo "== $name $(date -u +%T)"
TWINSERVE_GENERATE__STREAM_BATCH_MS=$ms timeout -s INT 600 "$PY" -m twinserve.cli bench \
  --stack "$stack" --scenario docs/results/stream-batching-2026-12-03/scenario.yaml \
  --out "$OUT/$name" > "$OUT/$name.log" 2>&1
echo "== $name rc=$? $(date -u +%T)"
