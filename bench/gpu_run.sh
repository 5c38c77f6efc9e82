#!/usr/bin/env bash
# Issue 11's GPU check, on a lent machine, in one call (bench/gpu_kit.sh prepared .gpu/ here):
#
#     device run, carry [".gpu"], timeout_s 540:  bash bench/gpu_run.sh
#
# Installs .gpu/wheels into /tmp/site (nothing can be fetched there), prints the GPU and the
# versions, then trains a randomly initialised Llama-3.2-1B-shaped model with ours and TRL's
# SFTTrainer in bf16 (bench/train_speed.py): tokens/s and MFU for both, the target being MFU
# >= 40% for ours. The log lands in $OUT/train_speed.log and the last JSON line in
# $OUT/train_speed.json (both come back). SHAPE=llama-tiny, EXAMPLES, BATCH override the run,
# e.g. for a dry run on a CPU (`bash bench/gpu_kit.sh 3.11` first; PYTHON=.venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
out="${OUT:-$(mktemp -d)}"
site=/tmp/finboard-gpu-site
[ -d .gpu/wheels ] || { echo "no .gpu/wheels: run bash bench/gpu_kit.sh here first" >&2; exit 2; }
rm -rf "$site"
"$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" \
  .gpu/wheels/*.whl
export PYTHONPATH="$site:$PWD" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
export TOKENIZERS_PARALLELISM=false FINBOARD_HOME="$(mktemp -d)"
export FINBOARD_CACHE="$FINBOARD_HOME/cache" HF_HOME="$FINBOARD_HOME/huggingface"

{
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
    --format=csv,noheader
  "$python" -c "import torch, transformers, peft, trl; print('torch', torch.__version__, \
'cuda', torch.cuda.is_available(), '| transformers', transformers.__version__, '| peft', \
peft.__version__, '| trl', trl.__version__)"
} 2>&1 | tee "$out/versions.txt"

set -o pipefail
"$python" bench/train_speed.py --random-shape "${SHAPE:-llama-3.2-1b}" \
  --tokenizer-dir .gpu/tokenizer --no-reference --seeds 1 --examples "${EXAMPLES:-512}" \
  --batch-size "${BATCH:-32}" 2>&1 | tee "$out/train_speed.log"
tail -1 "$out/train_speed.log" >"$out/train_speed.json"
