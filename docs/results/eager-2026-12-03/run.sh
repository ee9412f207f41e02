#!/usr/bin/env bash
# vLLM inside the in-process pipeline, three fresh processes one after the other: compiled with an
# empty compile cache, compiled again (the cache the first filled), and enforce_eager. Run from
# the repo root with `make setup` done; the first run is cold only on a machine whose cache
# (~/.cache/twinserve/vllm) is still empty. Writes <config>.json here (the last line of output).
set -u
here=$(dirname "$0")
for cfg in compiled-cold compiled-warm eager; do
  eager=false; [ "$cfg" = eager ] && eager=true
  TWINSERVE_GENERATE__VLLM__ENFORCE_EAGER=$eager PYTHONPATH=$PWD .venv/bin/python \
    "$here/one_run.py" > "$here/$cfg.out" 2> "$here/$cfg.log"
  echo "$cfg rc=$? $(date -u +%T)"
  tail -1 "$here/$cfg.out" > "$here/$cfg.json" && rm -f "$here/$cfg.out" "$here/$cfg.log"
done
