#!/usr/bin/env bash
# Set everything up, then start the app on http://127.0.0.1:8501 with the embedded default model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
exec .venv/bin/finboard app "$@"
