"""Take a model out of the product: the adapter, merged weights, GGUF, an Ollama Modelfile,
per-item results in lm-evaluation-harness's ``--log_samples`` layout, the leaderboard.

    >>> written = export(db, get_model("my-lora", db), "merged", Path("out"))  # doctest: +SKIP
    >>> written.check["matches"]                                             # doctest: +SKIP
    5

``merged`` is checked after writing: a fresh Python (``python -I``, so nothing of this
package is importable) loads the directory with plain ``transformers`` and greedily continues
five test prompts of the model's task; the texts must equal what the product's own evaluator
(``HFLanguageModel.generate``) gives for the same prompts. The check's script is written into
the export (``reload_check.py``) so anyone can run it again.

GGUF: no maintained HF→GGUF converter installs from PyPI (the ``gguf`` package reads and
writes the format but does not convert models; the converter is the script in the llama.cpp
repository), so ``gguf`` writes the merged directory and the exact command that converts it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.models.registry import ModelEntry, get_model
from core.store import Database
from core.store import scores as score_rows
from core.tasks.spec import TaskSpec, get_task, load_split

FORMATS = ("adapter", "merged", "gguf", "modelfile", "samples", "leaderboard")
CHECK_ITEMS = 5
CHECK_MAX_NEW_TOKENS = 12


@dataclass
class Exported:
    """What an export wrote, and (merged) what its reload check found."""

    format: str
    directory: Path
    files: list[str] = field(default_factory=list)
    check: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "directory": str(self.directory),
            "files": self.files,
            "check": self.check,
            "notes": self.notes,
        }


class ExportError(ValueError):
    """An export that cannot be made (says why and what to do)."""


def export(db: Database, entry: ModelEntry | None, fmt: str, out: Path) -> Exported:
    """Write ``entry`` in format ``fmt`` under ``out`` (a new or empty folder).

    ``entry`` may be None for the leaderboard (it holds every model).
    """
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if entry is None and fmt != "leaderboard":
        raise ExportError(f"The {fmt!r} export needs a model id")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"{out} is not empty: choose a new folder for the export")
    out.mkdir(parents=True, exist_ok=True)
    writer = {
        "adapter": export_adapter,
        "merged": export_merged,
        "gguf": export_gguf,
        "modelfile": export_modelfile,
        "samples": export_samples,
        "leaderboard": export_leaderboard,
    }[fmt]
    result = writer(db, entry, out)
    result.files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    return result


def export_commands(entry: ModelEntry) -> list[str]:
    """The ``finboard export`` commands that apply to ``entry`` (the model page lists them)."""
    formats = ["samples", "modelfile"]
    if entry.is_finetuned:
        formats = ["adapter"] + (["merged", "gguf"] if entry.method != "prompt-tuning" else [])
        formats += ["samples", "modelfile"]
    return [f"finboard export {entry.id} --format {fmt}" for fmt in formats]


# ---------------------------------------------------------------- adapter and merged weights


def _adapter_dir(entry: ModelEntry) -> Path:
    if not entry.is_finetuned or not entry.adapter_path:
        raise ExportError(
            f"'{entry.id}' is a base model: it has no adapter to export (its weights are "
            "those of its source; 'leaderboard' and 'samples' exports work for it)"
        )
    directory = Path(entry.adapter_path)
    if not (directory / "adapter_config.json").is_file():
        raise ExportError(f"The adapter of '{entry.id}' is missing or incomplete at {directory}")
    return directory


def export_adapter(db: Database, entry: ModelEntry, out: Path) -> Exported:
    """The peft adapter directory as trained, with its card (README.md) and training config."""
    shutil.copytree(_adapter_dir(entry), out, dirs_exist_ok=True)
    return Exported(
        "adapter", out, notes=[f"Load with peft: PeftModel.from_pretrained(base, {out})"]
    )


def _check_mergeable(entry: ModelEntry) -> None:
    _adapter_dir(entry)
    if entry.method == "prompt-tuning":
        raise ExportError(
            f"'{entry.id}' is prompt-tuned: its learned virtual tokens are embeddings put before "
            "every prompt, not a change of the weights, so there is nothing to merge into the "
            "base. Export it as 'adapter' and load it with peft."
        )


def export_merged(db: Database, entry: ModelEntry, out: Path) -> Exported:
    """Base + LoRA merged into one safetensors directory with the tokenizer and chat template,
    then reloaded in a fresh Python with ``transformers`` only and checked on five items."""
    import torch

    from core.models.loading import load_model

    _check_mergeable(entry)
    loaded = load_model(entry, device="cpu", dtype=torch.float32)  # LoRA merged on load
    loaded.model.save_pretrained(out, safe_serialization=True)
    loaded.tokenizer.save_pretrained(out)
    spec = _task_of(entry)
    prompts = _check_prompts(spec, loaded)
    expected = _product_outputs(loaded, prompts)
    del loaded
    check = reload_check(out, prompts, [], expected)
    if check["matches"] != len(prompts):
        raise ExportError(
            f"The merged export at {out} does not reproduce the product's outputs: "
            f"{check['matches']} of {len(prompts)} greedy outputs match ({check['mismatches']})"
        )
    return Exported("merged", out, check=check)


def _task_of(entry: ModelEntry) -> TaskSpec:
    """The task the check prompts come from: the one the model was trained on (else sentiment)."""
    name = entry.trained_on_task or "fin_sentiment"
    try:
        return get_task(name)
    except Exception:  # a corpus or a removed task: any built-in task shows the same weights
        return get_task("eps_extraction")


def _check_prompts(spec: TaskSpec, loaded: Any) -> list[str]:
    from core.tasks.prompts import render

    items = load_split(spec, "test").items[:CHECK_ITEMS]
    return [render(spec, item, loaded.tokenizer, loaded.entry.instruct).prompt for item in items]


def _product_outputs(loaded: Any, prompts: list[str]) -> list[str]:
    """The greedy continuations the product's evaluator gives (its batching and shared prefix).

    No stop sequences, only end-of-sequence: a whole ``CHECK_MAX_NEW_TOKENS`` continuation is
    compared, not just the first line (often empty for a numeric answer's newline stop).
    """
    from core.evaluation.hf import HFLanguageModel

    lm = HFLanguageModel(loaded.model, loaded.tokenizer, loaded.device)
    return lm.generate(prompts, [], CHECK_MAX_NEW_TOKENS)


RELOAD_SCRIPT = '''"""Reload a merged export with transformers alone and continue prompts greedily.

python reload_check.py EXPORT_DIR PROMPTS.json  ->  prints a JSON list of continuations
"""
import json
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

directory, prompts_file = sys.argv[1], sys.argv[2]
request = json.load(open(prompts_file))
tokenizer = AutoTokenizer.from_pretrained(directory)
model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
stop_ids = {tokenizer.eos_token_id}
eos = model.generation_config.eos_token_id
stop_ids.update(eos if isinstance(eos, list) else [eos] if eos is not None else [])
outputs = []
for prompt in request["prompts"]:
    bos = tokenizer.bos_token
    ids = tokenizer(prompt, add_special_tokens=not (bos and prompt.startswith(bos)),
                    return_tensors="pt").input_ids
    with torch.no_grad():
        new = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                             max_new_tokens=request["max_new_tokens"],
                             eos_token_id=sorted(i for i in stop_ids if i is not None),
                             pad_token_id=tokenizer.pad_token_id or 0)[0, ids.shape[1]:]
    tokens = [int(t) for t in new if int(t) not in stop_ids]
    text = tokenizer.decode(tokens, skip_special_tokens=True)
    cuts = [text.find(s) for s in request["stop"] if s and s in text]
    outputs.append((text[: min(cuts)] if cuts else text).strip())
print(json.dumps(outputs))
'''


def reload_check(
    directory: Path, prompts: list[str], stop: list[str], expected: list[str]
) -> dict[str, Any]:
    """Continue ``prompts`` with ``directory`` in a fresh, isolated Python; compare to expected."""
    script = directory / "reload_check.py"
    script.write_text(RELOAD_SCRIPT)
    request = directory / "reload_check_prompts.json"
    payload = {"prompts": prompts, "stop": list(stop), "max_new_tokens": CHECK_MAX_NEW_TOKENS}
    request.write_text(json.dumps(payload, indent=1))
    done = subprocess.run(
        [sys.executable, "-I", str(script), str(directory), str(request)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise ExportError(f"Reloading {directory} with transformers failed: {done.stderr[-800:]}")
    got = json.loads(done.stdout.strip().splitlines()[-1])
    mismatches = [
        {"item": i, "product": e, "transformers": g}
        for i, (e, g) in enumerate(zip(expected, got))
        if e != g
    ]
    return {
        "items": len(prompts),
        "matches": len(prompts) - len(mismatches),
        "mismatches": mismatches,
        "outputs": got,
        "command": f"python -I {script} {directory} {request}",
    }


# ---------------------------------------------------------------- GGUF and Ollama


def gguf_command(merged: Path, outfile: Path) -> str:
    """The external command that converts a merged HF directory to GGUF (llama.cpp's script)."""
    return (
        "git clone https://github.com/ggml-org/llama.cpp && "
        "pip install -r llama.cpp/requirements/requirements-convert_hf_to_gguf.txt && "
        f"python llama.cpp/convert_hf_to_gguf.py {merged} --outfile {outfile} --outtype f16"
    )


def export_gguf(db: Database, entry: ModelEntry, out: Path) -> Exported:
    """The merged directory (checked) plus the exact command that makes the GGUF file."""
    merged = export_merged(db, entry, out / "merged")
    outfile = out / f"{entry.id}.gguf"
    command = gguf_command(out / "merged", outfile)
    (out / "CONVERT_TO_GGUF.md").write_text(
        "# Converting this model to GGUF\n\n"
        "No maintained converter from Hugging Face weights to GGUF installs from PyPI (the\n"
        "`gguf` package reads and writes the format but does not convert models), so this\n"
        "export holds the merged weights and the converter is llama.cpp's own script:\n\n"
        f"```\n{command}\n```\n\nThen `ollama create {entry.id} -f Modelfile` with the Modelfile "
        "from `finboard export MODEL --format modelfile`.\n"
    )
    return Exported(
        "gguf",
        out,
        check=merged.check,
        notes=["No PyPI converter: run this command to make the GGUF file", command],
    )


def _template_with(tokenizer: Any, system: bool) -> str:
    messages = [{"role": "user", "content": "{{ .Prompt }}"}]
    if system:
        messages.insert(0, {"role": "system", "content": "{{ .System }}"})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def ollama_template(tokenizer: Any) -> str | None:
    """The model's chat template as an Ollama (Go) template, rendered with Go placeholders.

    The Jinja template is rendered with ``{{ .System }}`` and ``{{ .Prompt }}`` as the message
    contents, so the Go template writes exactly the tokens the model was trained with.
    """
    if not getattr(tokenizer, "chat_template", None):
        return None
    plain = _template_with(tokenizer, system=False)
    try:
        with_system = _template_with(tokenizer, system=True)
    except Exception:  # a template without a system role
        return plain
    return f"{{{{ if .System }}}}{with_system}{{{{ else }}}}{plain}{{{{ end }}}}"


def stop_tokens(tokenizer: Any, template: str | None) -> list[str]:
    """The end-of-sequence token and the end-of-turn markers the template writes."""
    found = [tokenizer.eos_token] if tokenizer.eos_token else []
    for token in getattr(tokenizer, "all_special_tokens", []):
        if template and token in template and "end" in token.lower() and token not in found:
            found.append(token)
    return found


def modelfile_text(entry: ModelEntry, tokenizer: Any, gguf_name: str) -> str:
    template = ollama_template(tokenizer)
    lines = [f"# Ollama Modelfile for {entry.id} (finboard export)", f"FROM ./{gguf_name}", ""]
    if template is not None:
        lines += [f'TEMPLATE """{template}"""', ""]
    lines += [f'PARAMETER stop "{token}"' for token in stop_tokens(tokenizer, template)]
    lines += ["PARAMETER temperature 0", ""]
    return "\n".join(lines)


def export_modelfile(db: Database, entry: ModelEntry, out: Path) -> Exported:
    """An Ollama Modelfile with the model's chat template and stop tokens (FROM its GGUF)."""
    from core.models.loading import load_tokenizer, model_directory

    base = get_model(entry.base_model_id, db) if entry.is_finetuned else entry
    tokenizer = load_tokenizer(model_directory(base))
    gguf_name = f"{entry.id}.gguf"
    (out / "Modelfile").write_text(modelfile_text(entry, tokenizer, gguf_name))
    return Exported(
        "modelfile",
        out,
        notes=[
            f"Make {gguf_name} with `finboard export {entry.id} --format gguf`, put it beside "
            f"the Modelfile, then: ollama create {entry.id} -f Modelfile"
        ],
    )


# ---------------------------------------------------------------- results


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sample_records(spec: TaskSpec, predictions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-item results in the layout of lm-evaluation-harness's ``--log_samples`` JSONL."""
    split = load_split(spec, "test")
    docs = {item.id: {"id": item.id, **item.fields, "answer": item.answer} for item in split.items}
    metric = "acc" if spec.primary_metric == "accuracy" else spec.primary_metric
    records = []
    for row in predictions:
        prompt, target = str(row.get("prompt") or ""), str(row.get("gold") or "")
        response = str(row.get("raw_output") or "")
        records.append(
            {
                "doc_id": row["position"],
                "doc": docs.get(row["item_id"], {"id": row["item_id"]}),
                "target": target,
                "arguments": {"gen_args_0": {"arg_0": prompt, "arg_1": {"until": spec.stop}}},
                "resps": [[response]],
                "filtered_resps": [row.get("parsed") or ""],
                "filter": "none",
                "metrics": [metric],
                "doc_hash": _sha256(json.dumps(docs.get(row["item_id"], {}), sort_keys=True)),
                "prompt_hash": _sha256(prompt),
                "target_hash": _sha256(target),
                metric: float(row["correct"]),
            }
        )
    return records


def export_samples(db: Database, entry: ModelEntry, out: Path) -> Exported:
    """One ``samples_<task>_<time>.jsonl`` per task: the model's newest test-split score."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H-%M-%S")
    newest: dict[str, dict[str, Any]] = {}
    for score in score_rows.for_model(db, entry.id):  # newest first
        if score["split"] == "test":
            newest.setdefault(score["task"], score)
    if not newest:
        raise ExportError(f"'{entry.id}' has no test-split score to export: evaluate it first")
    for task, score in sorted(newest.items()):
        rows = sample_records(get_task(task), score_rows.predictions(db, score["id"]))
        path = out / f"samples_{task}_{stamp}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return Exported("samples", out, notes=[f"score ids: {[s['id'] for s in newest.values()]}"])


def export_leaderboard(db: Database, entry: ModelEntry | None, out: Path) -> Exported:
    """The whole leaderboard (test split) as ``leaderboard.csv`` and ``leaderboard.json``."""
    from core.analysis.leaderboard import leaderboard

    table = leaderboard(db)
    table.to_csv(out / "leaderboard.csv", index=False)
    (out / "leaderboard.json").write_text(table.to_json(orient="records", indent=1))
    return Exported("leaderboard", out, notes=[f"{len(table)} models"])
