#!/usr/bin/env bash
# The one-shot accelerator check as one command for a machine with JAX (CUDA or
# TPU), flax, optax, orbax, chex, scikit-learn and PyTorch already installed and
# no network: install this project without its dependencies, then run the check.
#   bash benchmarks/accelerator_check.sh [OUT_DIR] [extra args]
# OUT_DIR defaults to $OUT (the device tool's output folder), else runs/accelerator_check.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-runs/accelerator_check}}"
shift || true
mkdir -p "$out"
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . >"$out/install.log" 2>&1 \
  || { echo "pip install failed (see $out/install.log); running from the source tree"; export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"; }
nvidia-smi >"$out/nvidia-smi.txt" 2>&1 || true
PYTHONUNBUFFERED=1 python3 -m benchmarks.accelerator_check --out "$out" "$@" 2>&1 | tee "$out/log.txt"
