#!/usr/bin/env bash
# The exact measurement of README.md: `run.sh default` then `run.sh throughput` (one Ray stack
# each: on 2 cores one takes ~7 min, so each config is its own heavy run), same scenario, same
# client; `run.sh nice15` then `run.sh nice0` (2026-12-03: Ray's worker niceness, README.md).
# Run from the repo root; writes reports/ray-throughput/<config>/, <config>.mode (what Ray
# Serve's controller said about throughput mode, its first log lines in worker-*.err) and
# <config>.nice (the niceness of every Ray worker process, from ps, while the load runs).
set -u
export PYTHONPATH=$PWD TWINSERVE_CRD_DIR=${TWINSERVE_CRD_DIR:-/work/shared/crds}
PY=${PY:-/work/main/.venv/bin/python}
OUT=${OUT:-reports/ray-throughput}
SCEN=docs/results/ray-throughput-2026-12-02/scenario.yaml
name=$1
case $name in
  default) envs=(RAY_SERVE_THROUGHPUT_OPTIMIZED=0) ;;
  # direct ingress (also on under throughput mode) only adds a listener per ingress replica,
  # a 30 s drain and, on a cluster, proxies on the head only: off (README.md)
  throughput) envs=(RAY_SERVE_THROUGHPUT_OPTIMIZED=1 RAY_SERVE_ENABLE_DIRECT_INGRESS=0) ;;
  # the stack's defaults since 2026-12-02 (throughput mode on), with Ray's own worker niceness
  # (15: every worker process, replicas and vLLM's engine among them) or the client's (0)
  nice15) envs=(RAY_SERVE_THROUGHPUT_OPTIMIZED=1 RAY_SERVE_ENABLE_DIRECT_INGRESS=0) ;;
  nice0) envs=(RAY_SERVE_THROUGHPUT_OPTIMIZED=1 RAY_SERVE_ENABLE_DIRECT_INGRESS=0
               RAY_worker_niceness=0) ;;
  *) echo "usage: $0 default|throughput|nice15|nice0" >&2; exit 2 ;;
esac
mkdir -p "$OUT"
echo "== $name $(date -u +%T)"
: > "$OUT/$name.log"; touch "$OUT/$name.start"
env "${envs[@]}" timeout -s INT 480 "$PY" -m twinserve.cli bench --stack rayserve \
  --scenario "$SCEN" --out "$OUT/$name" >> "$OUT/$name.log" 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null; do  # the cluster's temp dir goes when it stops
  for d in $(find /tmp -maxdepth 1 -name 'tsray-*' -newer "$OUT/$name.start" 2>/dev/null); do
    grep -rh -A8 "Throughput optimized" "$d"/session_latest/logs/ > "$OUT/$name.mode.tmp" \
      2>/dev/null && mv "$OUT/$name.mode.tmp" "$OUT/$name.mode"
  done
  ps -eo ni,comm | grep -E "ServeRepl|ServeCont|ProxyActor|VLLM|raylet|gcs_server" \
    | sort | uniq -c > "$OUT/$name.nice.tmp"
  [ -s "$OUT/$name.nice.tmp" ] && mv "$OUT/$name.nice.tmp" "$OUT/$name.nice"  # the last seen
  sleep 10
done
wait "$pid"
echo "== $name rc=$? $(date -u +%T)"
