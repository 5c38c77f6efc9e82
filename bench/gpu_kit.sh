#!/usr/bin/env bash
# Prepare .gpu/ for issue 11's GPU check on a lent machine (the `device` tool): a bare H200 with
# PyTorch, transformers, peft and accelerate but no trl, datasets or sqlite-utils, no hub access
# and no embedded SmolLM2. Run here, once, after scripts/setup.sh --bench:
#
#     bash bench/gpu_kit.sh            # wheels for the device's Python (3.12)
#     bash bench/gpu_kit.sh 3.11       # for this machine's Python: a dry run of bench/gpu_run.sh
#
# .gpu/ (git-ignored, about 20 MB) then holds:
# - wheels/: what the bench imports that the device lacks, at the versions tested here
#   (transformers and peft too, so the device runs the same code as CI);
# - tokenizer/: SmolLM2's tokenizer and chat template, for the randomly initialised model.
# The device's call then names .gpu in `carry` and runs `bash bench/gpu_run.sh` (see there).
set -euo pipefail
cd "$(dirname "$0")/.."
python_version="${1:-3.12}"
venv=.venv/bin/python
kit=.gpu
rm -rf "$kit" && mkdir -p "$kit/wheels" "$kit/tokenizer"

# The versions this checkout runs (scripts/setup.sh installed them).
version() {
  "$venv" -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null ||
    { echo "$1 is not installed here: run bash scripts/setup.sh --bench first" >&2; exit 2; }
}
packages=(trl datasets dill multiprocess sqlite-utils sqlite-fts4 click-default-group
  transformers peft accelerate)
pins=()
for package in "${packages[@]}"; do pins+=("$package==$(version "$package")"); done

echo "==> Wheels for Python $python_version: ${pins[*]}"
"$venv" -m pip download -q --no-deps --only-binary=:all: --python-version "$python_version" \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform any -d "$kit/wheels" "${pins[@]}"

echo "==> SmolLM2's tokenizer and chat template"
"$venv" - "$kit/tokenizer" <<'PY'
import sys

from transformers import AutoTokenizer

from core.models.loading import model_directory
from core.models.registry import get_model

tokenizer = AutoTokenizer.from_pretrained(model_directory(get_model("smollm2-135m-instruct")))
assert tokenizer.chat_template, "SmolLM2's tokenizer has no chat template"
tokenizer.save_pretrained(sys.argv[1])
PY
du -sh "$kit"
