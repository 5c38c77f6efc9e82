"""Run a model: evaluate a base model, or also fine-tune it and compare.

Thin: reads the registry, tasks, presets and estimates from ``core``; Start submits a job to
the durable queue (``core.jobs``), makes sure a worker runs it, and opens the jobs page. What
the form shows is what runs: a preset fills every field, the method and the preset cannot
disagree without a word, and "Preview command" shows the exact ``finboard`` command the
button queues.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from core import format as fmt
from core.analysis import estimates
from core.data import finance_corpus
from core.jobs import kinds, queue, worker
from core.jobs.kinds import ENCODER_ONLY_METHODS
from core.models import registry
from core.models.encoder import is_encoder
from core.tasks import spec as task_specs
from core.training import config as train_config
from core.training.encoder import ENCODER_METHODS
from core.workflows.finetune_compare import scored_tasks
from streamlit_app import common, data_views

EVALUATE = "Use Base Model (standard evaluation)"
FINETUNE = "Also Fine-tune and Compare"
KNOBS = [
    *("learning_rate", "epochs", "batch_size", "grad_accum", "warmup_ratio", "weight_decay"),
    *("scheduler", "max_seq_length", "max_train_examples", "lora_r", "lora_alpha"),
    *("lora_dropout", "target_modules", "num_virtual_tokens", "prompt_init"),
    *("max_minutes", "early_stopping_patience", "eval_every", "save_every", "keep_checkpoints"),
    *("keep_checkpoints_after_success", "gradient_checkpointing", "dtype", "seed", "fsdp"),
]
DEFAULT_PRESET = "quick"  # the CPU demo: minutes on the embedded model
LOG_RATES = sorted({m * 10.0**e for e in range(-6, 0) for m in (1, 2, 3, 5)})


@st.cache_data(ttl=30, show_spinner=False)
def _hardware() -> estimates.Hardware:
    return estimates.hardware()


def model_picker(db) -> registry.ModelEntry:
    bases = registry.base_models()
    default = registry.default_model_id()
    labels = {e.id: f"{e.display_name} · {fmt.fmt_params(e.params)}" for e in bases}
    index = next((i for i, e in enumerate(bases) if e.id == default), 0)
    model_id = st.selectbox(
        "Base model", [e.id for e in bases], index=index, format_func=labels.get
    )
    entry = registry.get_model(model_id, db)
    sources = {
        "gguf_package": "GGUF weights from a pip package",
        "hf": "Hugging Face hub cache",
        "local": "local folder",
        "zip_package": "zipped model from a pip package",
    }
    kind = "instruction-tuned" if entry.instruct else "base model (not instruction-tuned)"
    if is_encoder(entry):
        kind = "encoder: classifies with one trained head per task"
    st.markdown(
        f"**{fmt.fmt_params(entry.params)}** parameters · license **{entry.license}** · "
        f"{sources[entry.source.kind]} · {kind}"
    )
    return entry


# ---------------------------------------------------------------- the fine-tune form


def _key(name: str) -> str:
    return f"adv_{name}"


def fill_from_preset(preset: str) -> None:
    """Put the preset's every setting (method included) into the form's fields."""
    config = train_config.preset_config(preset).to_dict()
    for name in KNOBS:
        st.session_state[_key(name)] = config[name]
    st.session_state["launch_method"] = config["method"]
    st.session_state["launch_filled"] = preset


def _rate_options(current: float) -> list[float]:
    return sorted({*LOG_RATES, float(current)})


def knob(column, name: str) -> Any:
    """One setting's field, with its help text and rules from ``TrainConfig``."""
    rules, tip, key = train_config.field_rules(name), train_config.field_help(name), _key(name)
    label = name.replace("_", " ")
    current = st.session_state[key]
    if name == "learning_rate":
        return column.select_slider(
            "learning rate (log scale)",
            options=_rate_options(current),
            format_func=lambda v: f"{v:.0e}".replace("e-0", "e-"),
            help=tip,
            key=key,
        )
    if "choices" in rules:
        return column.selectbox(label, list(rules["choices"]), help=tip, key=key)
    if isinstance(current, bool):
        return column.checkbox(label, help=tip, key=key)
    low = rules.get("min", rules.get("above"))
    high = rules.get("max", rules.get("below"))
    if isinstance(current, int):
        return column.number_input(label, min_value=low, max_value=high, step=1, help=tip, key=key)
    if isinstance(current, float):
        step = 0.05 if (high or 10) <= 1 else 0.5
        return column.number_input(
            label, min_value=low, max_value=high, step=step, format="%g", help=tip, key=key
        )
    return column.text_input(label, help=tip, key=key)


def settings_form(method: str, preset_values: dict[str, Any]) -> dict[str, Any]:
    """The fields of the chosen method's settings; returns those that differ from the preset."""
    shown = [name for name in KNOBS if train_config.knob_applies(name, method)]
    columns = st.columns(3)
    changed = {}
    for position, name in enumerate(shown):
        value = knob(columns[position % 3], name)
        if value != preset_values[name]:
            changed[name] = value
    hidden = [name for name in KNOBS if name not in shown]
    if hidden:
        st.caption(
            f"Not used by {train_config.method_label(method)} (so not shown): "
            + ", ".join(name.replace("_", " ") for name in hidden)
        )
    return changed


def devices_control(hw: estimates.Hardware) -> tuple[dict, int]:
    """What the job runs on: GPUs for one data-parallel run, or CPU processes. Returns the
    job params (``gpus`` / ``processes``) and the number of processes the job will get."""
    if len(hw.gpus) > 1:
        choices = [str(n) for n in range(1, len(hw.gpus) + 1)] + ["all"]
        gpus = st.select_slider(
            "GPUs for this job",
            choices,
            value="1",
            help="Several GPUs run one data-parallel job (each computes its share of every "
            "batch); with 1, the worker runs other jobs on the other GPUs at the same time.",
        )
        count = len(hw.gpus) if gpus == "all" else int(gpus)
        return ({"gpus": gpus if gpus == "all" else count} if count > 1 else {}), count
    if hw.gpus:
        return {}, 1
    processes = st.number_input(
        "CPU processes",
        min_value=1,
        max_value=max(1, hw.cpu_cores),
        value=1,
        help="Data parallel on the CPU (torch.distributed, gloo): the processes share the "
        "machine's cores, so it rarely runs faster than one process; it is the same code "
        "that spreads a job over GPUs.",
    )
    return ({"processes": int(processes)} if processes > 1 else {}), int(processes)


def show_plan(
    plan: list, memory_gb: float, hw: estimates.Hardware, what: str, advice: str | None = None
) -> None:
    """The whole job's estimated time with its phases, and whether it fits in memory
    (``advice``: what to do when it does not; the generic advice otherwise)."""
    total = sum(p.seconds for p in plan)
    fits = memory_gb <= hw.memory_available_gb
    common.tiles(
        [
            common.Tile(f"Estimated {what} time", fmt.fmt_duration(total)),
            common.Tile("Estimated peak memory", f"{memory_gb:.1f} GB"),
            common.Tile(
                "Fits in memory",
                "yes" if fits else "no",
                f"{hw.memory_available_gb:.1f} GB available",
                None if fits else "red",
            ),
        ]
    )
    st.caption(
        "The whole job: "
        + " · ".join(f"{p.name} {fmt.fmt_duration(p.seconds)}" for p in plan)
        + ". Speeds measured in earlier runs of this model where there are any, else estimated "
        "from its size."
    )
    if not fits:
        st.warning(
            advice
            or f"Needs about {memory_gb:.1f} GB but {hw.memory_available_gb:.1f} GB is "
            "available: it will not fit. Use a smaller model or a machine with more memory.",
            icon=":material/warning:",
        )


def submit(db, kind: str, params: dict) -> int | None:
    try:
        job_id = queue.submit(db, kind, params)
    except Exception as exc:  # errors a user can cause, with a message that says what to do
        st.error(f"Not started: {exc}")
        return None
    worker.ensure_worker()
    return job_id


def start_button(db, label: str, kind: str, params: dict, disabled: bool = False) -> None:
    with st.expander("Preview command", icon=":material/terminal:"):
        st.caption("The same job from a terminal (what the button below queues):")
        common.code_block(kinds.command_line(kind, params))
    if st.button(label, type="primary", disabled=disabled):
        job_id = submit(db, kind, params)
        if job_id:
            st.session_state["selected_job"] = job_id
            st.session_state.pop("followed_jobs", None)
            common.switch_page("views/jobs.py")


def evaluate_form(db, entry: registry.ModelEntry, hw: estimates.Hardware, names: list) -> None:
    # pills, not a multiselect: a box holding nine chips costs the page load about twice as
    # much in the browser
    chosen = st.pills(
        "Tasks",
        names,
        selection_mode="multi",
        default=names,
        key="launch_eval_tasks",
        help="Each task is scored on its test split. Click a task to leave it out.",
    )
    devices, _ = devices_control(hw)
    params = {"model_id": entry.id, "tasks": chosen, **devices}
    if chosen:
        specs = [task_specs.get_task(n) for n in chosen]
        memory = estimates.estimate_evals(entry, specs, hw, db).memory_gb
        show_plan(estimates.eval_plan(entry, specs, hw, db), memory, hw, "evaluation")
    start_button(db, "Start evaluation", "eval", params, disabled=not chosen)


def finetune_form(db, entry: registry.ModelEntry, hw: estimates.Hardware, names: list) -> None:
    cols = st.columns(3)
    task = cols[0].selectbox(
        "Task or dataset",
        names,
        index=0,
        help="Trained on its train split; base and fine-tuned are scored on the same test items "
        "of every task. finance_corpus: every finance task's training split mixed "
        "(configs/corpora/finance.yaml).",
    )
    presets = train_config.presets()
    names_of_presets = list(presets)
    encoder = is_encoder(entry)
    default_preset = "encoder" if encoder else DEFAULT_PRESET
    methods = (
        list(ENCODER_METHODS)
        if encoder
        else [m for m in train_config.METHODS if m not in ENCODER_ONLY_METHODS]
    )
    if st.session_state.get("launch_method") not in (None, *methods):
        st.session_state["launch_method"] = methods[0]
    preset = cols[1].selectbox(
        "Preset",
        names_of_presets,
        index=names_of_presets.index(default_preset) if default_preset in presets else 0,
        key="launch_preset",
        help="Named settings from configs/presets/.",
    )
    if st.session_state.get("launch_filled") != preset:
        fill_from_preset(preset)
    method = cols[2].selectbox(
        "Method",
        methods,
        format_func=train_config.method_label,
        key="launch_method",
        help="Starts as the preset's method; another choice keeps the preset's other settings.",
    )
    preset_values = train_config.preset_config(preset).to_dict()
    st.caption(presets[preset].get("description", ""))
    if method != preset_values["method"]:
        st.info(
            f"The **{preset}** preset is a {train_config.method_label(preset_values['method'])} "
            f"preset: this run uses **{train_config.method_label(method)}** with the preset's "
            "other settings.",
            icon=":material/swap_horiz:",
        )
    with st.expander(f"Settings ({train_config.method_label(method)})", expanded=False):
        overrides = settings_form(method, preset_values)
    try:
        config = train_config.preset_config(preset, {"method": method, **overrides})
    except ValueError as exc:
        st.error(str(exc))
        return
    spec = task_specs.get_task(task)
    if encoder:  # one process; minutes on a CPU (no estimate model for encoders yet)
        st.caption("An encoder trains in one process: a few minutes on a CPU for 1,500 messages.")
        params = {"model_id": entry.id, "task": task, "preset": preset, "overrides": overrides}
        if method != preset_values["method"]:
            params["method"] = method
        start_button(db, "Start: fine-tune and compare", "finetune_compare", params)
        return
    data_views.record_preview(spec, key="launch_preview", model_id=entry.id)
    devices, processes = devices_control(hw)
    estimate = estimates.estimate_training(entry, spec, config, hw, db, processes)
    plan = estimates.training_plan(entry, spec, config, hw, db, True, processes)
    advice = (
        None if estimate.fits else estimates.too_big_advice(entry, config, hw, estimate.memory_gb)
    )
    show_plan(plan, estimate.memory_gb, hw, "job", advice)
    scored = [task.name for task in scored_tasks(db, entry, spec)]
    st.caption(
        f"Both models are scored on {len(scored)} task(s), so a regression shows: "
        + ", ".join(scored)
        + "."
    )
    params = {
        "model_id": entry.id,
        "task": task,
        "preset": preset,
        "overrides": overrides,
        **devices,
    }
    if method != preset_values["method"]:
        params["method"] = method
    start_button(db, "Start: fine-tune and compare", "finetune_compare", params)


def main() -> None:
    st.title("Run a model")
    st.caption(
        "Pick a model, then evaluate it as it is, or also fine-tune it on a task and compare the two."
    )
    db = common.get_db()
    hw = _hardware()
    st.info(f"Hardware found: {hw.summary()}", icon=":material/memory:")
    entry = model_picker(db)
    mode = st.radio("What to do", [EVALUATE, FINETUNE], horizontal=True)
    names = [s.name for s in task_specs.list_tasks()]
    if mode == EVALUATE and is_encoder(entry):
        st.info(
            "An encoder is scored by heads trained for each task: an untrained one has no "
            "answers to score. Choose **Also Fine-tune and Compare**, which also scores the "
            "majority-class baseline; fine-tuned encoders are on the Leaderboard.",
            icon=":material/info:",
        )
    elif mode == EVALUATE:
        evaluate_form(db, entry, hw, names)
    else:
        finetune_form(db, entry, hw, [finance_corpus.NAME, *names])  # the corpus first


main()
