"""Benchmark tasks: short declarative YAML files behind one loader.

    >>> spec = get_task("fin_sentiment")
    >>> spec.kind, spec.labels
    ('choice', ['positive', 'neutral', 'negative'])
    >>> len(load_split(spec, "test").fingerprint)
    64

A task file names its data source (the seeded synthetic generator, or a user's CSV/JSONL
file with a column mapping), its prompt, its kind and its metrics. Built-in tasks live in
``configs/tasks/``; tasks made from user datasets in ``paths.user_tasks_dir()``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from core import paths
from core.data import importer, review_import, reviews, synthetic
from core.data.items import SPLIT_NAMES, Item, Split

TASK_KINDS = ("choice", "rating", "numeric", "text", "set")
GENERATION_KINDS = ("numeric", "text", "set")
METRICS_BY_KIND = {
    "choice": ("accuracy", "macro_f1"),
    "rating": ("accuracy", "macro_f1", "mae", "within1_accuracy", "rmse"),
    "numeric": ("accuracy", "unparseable_rate", "mae"),
    "text": ("accuracy", "unparseable_rate", "rouge_l", "fact_coverage", "domain_term_precision"),
    # set extraction (core/evaluation/sets.py): the labels are the closed vocabulary
    "set": (
        *("micro_f1", "macro_f1", "micro_precision", "micro_recall", "macro_precision"),
        *("macro_recall", "accuracy", "unparseable_rate"),
    ),
}
RANKABLE_METRICS = (
    "accuracy",
    "macro_f1",
    "micro_f1",
    "within1_accuracy",
    "rouge_l",
)  # the leaderboard ranks by primary metric, higher wins
DEFAULT_SIZES = {"train": 600, "validation": 100, "test": 200}
DEFAULT_FILE_SPLIT = {"validation": 0.1, "test": 0.2}
TOP_FIELDS = {
    *("name", "version", "description", "kind", "source", "instruction", "template"),
    *("labels", "answer_format", "metrics", "primary_metric", "num_shots", "tolerance"),
    *("generation", "calibration", "synonyms", "robustness"),
    "quality",  # quality-pipeline thresholds (core.data.quality) used when the data was made
    "suite",  # "finance" (the default) or "extra": see TaskSpec.in_default_suite
}
SUITES = ("finance", "extra")
CALIBRATIONS = ("none", "contextual")


class TaskSpecError(Exception):
    """A task file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Tolerance:
    """A numeric answer is right when |pred - gold| <= max(absolute, relative * |gold|)."""

    absolute: float = 0.0
    relative: float = 0.0

    def accepts(self, predicted: float, gold: float) -> bool:
        return abs(predicted - gold) <= max(self.absolute, self.relative * abs(gold)) + 1e-12


@dataclass(frozen=True)
class TaskSpec:
    name: str
    version: int
    kind: str
    source: dict[str, Any]
    instruction: str
    template: str
    path: Path
    description: str = ""
    labels: list[str] = field(default_factory=list)
    answer_format: str = ""
    metrics: list[str] = field(default_factory=list)
    primary_metric: str = "accuracy"
    num_shots: int = 0
    tolerance: Tolerance = Tolerance()
    max_new_tokens: int = 16
    stop: list[str] = field(default_factory=lambda: ["\n"])
    calibration: str = "none"
    synonyms: dict[str, str] = field(default_factory=dict)  # set kind: written form -> label
    robustness: dict[str, float] = field(default_factory=dict)  # slice thresholds (analysis/slices)
    suite: str = "finance"

    @property
    def is_generation(self) -> bool:
        return self.kind in GENERATION_KINDS

    @property
    def prompt_hash(self) -> str:
        """SHA-256 of everything that shapes the prompt text (not the data)."""
        parts = [self.instruction, self.template, "|".join(self.labels), self.answer_format]
        if self.calibration != "none":
            parts.append(f"calibration={self.calibration}")
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

    @property
    def builtin(self) -> bool:
        return self.path.parent == paths.BUILTIN_TASKS_DIR

    @property
    def in_default_suite(self) -> bool:
        """A built-in task of the finance suite: what the demo evaluates and every fine-tune is
        also scored on. ``suite: extra`` built-ins (client messages, reviews) run when asked."""
        return self.builtin and self.suite == "finance"


# ---------------------------------------------------------------- parsing task files


def _fail(path: Path, field_name: str, message: str) -> TaskSpecError:
    return TaskSpecError(f"{path}, field '{field_name}': {message}")


def _template_fields(path: Path, template: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name}
    except ValueError as exc:
        raise _fail(path, "template", f"not a valid template ({exc})") from exc


def _item_fields(kind: str, source: dict[str, Any]) -> set[str]:
    if source.get("type") in ("file", "prepared"):
        return {"prompt"} if kind in GENERATION_KINDS else {"text"}
    return {"text"}


def _parse_source(path: Path, raw: Any, kind: str) -> dict[str, Any]:
    if isinstance(raw, dict) and raw.get("type") == "reviews_file":
        return review_import.parse_source(path, raw, _fail)
    if not isinstance(raw, dict) or raw.get("type") not in ("synthetic", "file", "prepared"):
        raise _fail(
            path, "source.type", "must be 'synthetic', 'file', 'prepared' or 'reviews_file'"
        )
    source = dict(raw)
    if source["type"] == "prepared":  # checked split files (core.data.splits)
        from core.data.splits import parse_prepared_source

        return parse_prepared_source(path, source, _fail)
    if source["type"] == "synthetic":
        if source.get("generator") not in synthetic.GENERATOR_NAMES:
            raise _fail(
                path, "source.generator", f"must be one of {', '.join(synthetic.GENERATOR_NAMES)}"
            )
        sizes = {**DEFAULT_SIZES, **(source.get("sizes") or {})}
        if set(sizes) - set(SPLIT_NAMES) or any(
            not isinstance(n, int) or n < 0 for n in sizes.values()
        ):
            raise _fail(path, "source.sizes", f"sizes of {', '.join(SPLIT_NAMES)}, each >= 0")
        source["sizes"] = sizes
        source["seed"] = int(source.get("seed", 0))
        label_fields = synthetic.LABEL_FIELDS.get(source["generator"], ())
        if source.get("label") is not None and source["label"] not in label_fields:
            raise _fail(
                path, "source.label", f"must be one of {', '.join(label_fields) or '(none)'}"
            )
        if (
            source["generator"] == "reviews"
            and source.setdefault("view", "rating") not in reviews.VIEWS
        ):
            raise _fail(path, "source.view", f"must be one of {', '.join(reviews.VIEWS)}")
        return source
    if not source.get("path"):
        raise _fail(path, "source.path", "a file source needs the data file's path")
    data_path = Path(source["path"])
    if not data_path.is_absolute():
        data_path = (path.parent / data_path).resolve()
    source["path"] = str(data_path)
    columns = source.get("columns") or {}
    needed = ("prompt", "answer") if kind in GENERATION_KINDS else ("text", "label")
    missing = [role for role in needed if not columns.get(role)]
    if missing:
        raise _fail(path, "source.columns", f"map the column(s) for: {', '.join(missing)}")
    fractions = {**DEFAULT_FILE_SPLIT, **(source.get("split") or {})}
    if sum(fractions.values()) >= 1 or any(f < 0 for f in fractions.values()):
        raise _fail(path, "source.split", "validation + test fractions must be >= 0 and < 1")
    source["split"] = fractions
    source["seed"] = int(source.get("seed", 0))
    return source


def parse_task(path: Path, raw: Any) -> TaskSpec:
    """Validate one task mapping (as read from ``path``) into a TaskSpec."""
    if not isinstance(raw, dict):
        raise TaskSpecError(f"{path}: a task file must be a YAML mapping")
    unknown = set(raw) - TOP_FIELDS
    if unknown:
        raise _fail(
            path, sorted(unknown)[0], f"unknown field; allowed: {', '.join(sorted(TOP_FIELDS))}"
        )
    for required in ("name", "kind", "source", "template"):
        if not raw.get(required):
            raise _fail(path, required, "is required")
    kind = raw["kind"]
    if kind not in TASK_KINDS:
        raise _fail(path, "kind", f"must be one of {', '.join(TASK_KINDS)}, not {kind!r}")
    source = _parse_source(path, raw["source"], kind)
    labels = [str(label) for label in raw.get("labels") or []]
    if kind in ("choice", "rating") and len(set(labels)) < 2:
        raise _fail(path, "labels", "a choice task needs at least two distinct labels")
    if kind == "set" and not labels:
        raise _fail(path, "labels", "a set task lists its vocabulary as labels")
    synonyms = {str(k).lower(): str(v) for k, v in (raw.get("synonyms") or {}).items()}
    if set(synonyms.values()) - set(labels):
        bad_target = sorted(set(synonyms.values()) - set(labels))[0]
        raise _fail(path, "synonyms", f"{bad_target!r} is not one of the labels")
    template = str(raw["template"])
    unknown_fields = _template_fields(path, template) - _item_fields(kind, source)
    if unknown_fields:
        raise _fail(
            path,
            "template",
            f"uses {sorted(unknown_fields)}; available: {sorted(_item_fields(kind, source))}",
        )
    metrics = list(raw.get("metrics") or METRICS_BY_KIND[kind])
    bad = [m for m in metrics if m not in METRICS_BY_KIND[kind]]
    if bad:
        raise _fail(
            path, "metrics", f"{bad} not available for kind '{kind}': {METRICS_BY_KIND[kind]}"
        )
    primary = raw.get("primary_metric", metrics[0])
    if primary not in metrics or primary not in RANKABLE_METRICS:
        raise _fail(
            path,
            "primary_metric",
            f"must be one of the task's metrics {metrics} that rank higher-is-better: {RANKABLE_METRICS}",
        )
    calibration = str(raw.get("calibration", "none"))
    if calibration not in CALIBRATIONS or (
        calibration != "none" and kind not in ("choice", "rating")
    ):
        raise _fail(
            path, "calibration", f"one of {CALIBRATIONS}; only choice and rating tasks calibrate"
        )
    generation = raw.get("generation") or {}
    tolerance = raw.get("tolerance") or {}
    try:
        version = int(raw.get("version", 1))
        num_shots = int(raw.get("num_shots", 0))
        tol = Tolerance(float(tolerance.get("absolute", 0)), float(tolerance.get("relative", 0)))
        max_new_tokens = int(generation.get("max_new_tokens", 16))
    except (TypeError, ValueError, AttributeError) as exc:
        raise _fail(
            path, "version/num_shots/tolerance/generation", f"must be numbers ({exc})"
        ) from exc
    return TaskSpec(
        name=str(raw["name"]),
        version=version,
        kind=kind,
        source=source,
        instruction=str(raw.get("instruction", "")).strip(),
        template=template,
        path=path,
        description=str(raw.get("description", "")).strip(),
        labels=labels,
        answer_format=str(raw.get("answer_format", "")),
        metrics=metrics,
        primary_metric=primary,
        num_shots=num_shots,
        tolerance=tol,
        max_new_tokens=max_new_tokens,
        stop=[str(s) for s in generation.get("stop", ["\n"])],
        calibration=calibration,
        synonyms=synonyms,
        robustness=_robustness(path, raw.get("robustness")),
        suite=_suite(path, raw.get("suite", "finance")),
    )


def _suite(path: Path, raw: Any) -> str:
    if raw not in SUITES:
        raise _fail(path, "suite", f"must be one of {', '.join(SUITES)}")
    return str(raw)


def _robustness(path: Path, raw: Any) -> dict[str, float]:
    """Slice thresholds over the defaults of ``core.analysis.slices.THRESHOLDS``."""
    from core.analysis.slices import THRESHOLDS

    if raw is None:
        return dict(THRESHOLDS)
    if not isinstance(raw, dict) or set(raw) - set(THRESHOLDS):
        raise _fail(path, "robustness", f"a mapping of {', '.join(THRESHOLDS)}")
    try:
        values = {**THRESHOLDS, **{k: float(v) for k, v in raw.items()}}
    except (TypeError, ValueError) as exc:
        raise _fail(path, "robustness", f"thresholds must be numbers ({exc})") from exc
    if any(value < 0 for value in values.values()):
        raise _fail(path, "robustness", "thresholds must be >= 0")
    return values


def load_task_file(path: str | Path) -> TaskSpec:
    path = Path(path)
    return parse_task(path, paths.read_yaml(path, TaskSpecError, "Task file"))


def task_files() -> list[Path]:
    files = sorted(paths.BUILTIN_TASKS_DIR.glob("*.yaml"))
    if paths.user_tasks_dir().is_dir():
        files += sorted(paths.user_tasks_dir().glob("*.yaml"))
    return files


def _scan_tasks() -> tuple[list[TaskSpec], list[tuple[Path, str]]]:
    """(usable tasks, [(file, why not)]) over every task file; built-ins first."""
    specs: list[TaskSpec] = []
    broken: list[tuple[Path, str]] = []
    seen: dict[str, Path] = {}
    for path in task_files():
        try:
            spec = load_task_file(path)
        except TaskSpecError as exc:
            if path.parent == paths.BUILTIN_TASKS_DIR:
                raise  # a broken built-in is a bug of the product: say it loudly
            broken.append((path, str(exc)))
            continue
        if spec.name in seen:
            broken.append((path, f"task name '{spec.name}' is also used by {seen[spec.name]}"))
            continue
        seen[spec.name] = path
        specs.append(spec)
    return specs, broken


def list_tasks() -> list[TaskSpec]:
    """Every usable built-in and user task (see ``broken_tasks`` for the user files that are not).

    One broken user task file (edited by hand, its data file gone) never hides the others.
    """
    return _scan_tasks()[0]


def broken_tasks() -> list[tuple[Path, str]]:
    """The user task files that cannot be used, each with the reason."""
    return _scan_tasks()[1]


def get_task(name: str) -> TaskSpec:
    """A task by name, or a file path to a task YAML (or a training corpus, by name)."""
    from core.data import finance_corpus

    if finance_corpus.is_corpus(name):
        return finance_corpus.corpus_spec(name)
    if name.endswith((".yaml", ".yml")) and Path(name).is_file():
        return load_task_file(name)
    for path in task_files():
        if path.stem == name:
            spec = load_task_file(path)
            if spec.name == name:
                return spec
    for spec in list_tasks():
        if spec.name == name:
            return spec
    known = ", ".join(spec.name for spec in list_tasks())
    raise TaskSpecError(f"Unknown task '{name}'. Known tasks: {known}")


# ---------------------------------------------------------------- data for a task


@lru_cache(maxsize=16)
def _synthetic_splits(
    generator: str, seed: int, sizes: tuple[tuple[str, int], ...]
) -> dict[str, list[Item]]:
    return synthetic.generate_splits(generator, seed, dict(sizes))


def split_of(item_id: str, seed: int, fractions: dict[str, float]) -> str:
    """Deterministic split by a hash of the row id: adding rows never moves existing ones."""
    value = int(hashlib.sha256(f"{seed}:{item_id}".encode()).hexdigest()[:12], 16) / 16**12
    if value < fractions["test"]:
        return "test"
    if value < fractions["test"] + fractions["validation"]:
        return "validation"
    return "train"


def _file_items(spec: TaskSpec) -> list[Item]:
    source = spec.source
    columns = source.get("columns") or {}
    kind = "generation" if spec.is_generation else "classification"
    return importer.import_dataset(
        source["path"],
        kind,
        importer.ColumnMapping(**{k: v for k, v in columns.items() if v}),
        labels=spec.labels or None,
        file_format=source.get("format"),
    )


def load_split(spec: TaskSpec, split: str) -> Split:
    """The items of one split, deterministic for the task's seed and sizes."""
    if split not in SPLIT_NAMES:
        raise TaskSpecError(f"Unknown split '{split}': use one of {', '.join(SPLIT_NAMES)}")
    source = spec.source
    if source["type"] == "prepared":
        from core.data.splits import load_prepared_split

        return Split(task=spec.name, name=split, items=load_prepared_split(source, split))
    if source["type"] == "corpus":  # a training corpus mixing tasks (core.data.finance_corpus)
        from core.data.finance_corpus import load_corpus_split

        return load_corpus_split(spec, split)
    if source["type"] == "synthetic":
        sizes = tuple(sorted(source["sizes"].items()))
        items = _synthetic_splits(source["generator"], source["seed"], sizes)[split]
        if source.get("label"):  # a multi-label generator: this task's label is one of them
            items = [dataclasses.replace(i, answer=str(i.meta[source["label"]])) for i in items]
        if source.get("view"):  # one review record, the answer of this task's view
            items = reviews.view_items(items, source["view"])
    elif source["type"] == "reviews_file":
        items = [
            item
            for item in review_import.task_items(source)
            if split_of(item.id, source["seed"], source["split"]) == split
        ]
    else:
        items = [
            item
            for item in _file_items(spec)
            if split_of(item.id, source["seed"], source["split"]) == split
        ]
    return Split(task=spec.name, name=split, items=list(items))
