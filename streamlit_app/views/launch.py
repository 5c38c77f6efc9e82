"""Model selection and launch: evaluate a base model, or also fine-tune it and compare.

Thin: reads the registry, tasks, presets and estimates from ``core``; Start submits jobs to
the durable queue (``core.jobs``), makes sure a worker runs them, and opens the jobs page.
"""

from __future__ import annotations

import streamlit as st

from core import format as fmt
from core.analysis import estimates
from core.jobs import queue, worker
from core.models import registry
from core.tasks import spec as task_specs
from core.training import config as train_config
from streamlit_app import common

EVALUATE = "Use Base Model (standard evaluation)"
FINETUNE = "Also Fine-tune and Compare"
ADVANCED_FIELDS = [
    "learning_rate",
    "epochs",
    "batch_size",
    "grad_accum",
    "warmup_ratio",
    "weight_decay",
    "scheduler",
    "max_seq_length",
    "max_train_examples",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "target_modules",
    "num_virtual_tokens",
    "prompt_init",
    "early_stopping_patience",
    "eval_every",
    "save_every",
    "keep_checkpoints",
    "gradient_checkpointing",
    "seed",
]
CHOICES = {"scheduler": train_config.SCHEDULERS, "prompt_init": ("text", "random")}


@st.cache_data(ttl=30, show_spinner=False)
def _hardware() -> estimates.Hardware:
    return estimates.hardware()


def _model_picker(db) -> registry.ModelEntry:
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
    }
    kind = "instruction-tuned" if entry.instruct else "base model (not instruction-tuned)"
    st.markdown(
        f"**{fmt.fmt_params(entry.params)}** parameters · license **{entry.license}** · "
        f"{sources[entry.source.kind]} · {kind}"
    )
    return entry


def _advanced(config: train_config.TrainConfig) -> dict:
    """Every knob, pre-filled from the preset, with the config's help text as tooltip."""
    values = config.to_dict()
    changed = {}
    columns = st.columns(3)
    for position, name in enumerate(ADVANCED_FIELDS):
        column, current, tip = columns[position % 3], values[name], train_config.field_help(name)
        label = name.replace("_", " ")
        key = f"adv_{name}"
        if name in CHOICES:
            options = list(CHOICES[name])
            value = column.selectbox(
                label, options, index=options.index(current), help=tip, key=key
            )
        elif isinstance(current, bool):
            value = column.checkbox(label, value=current, help=tip, key=key)
        elif isinstance(current, int):
            value = column.number_input(
                label, value=current, min_value=0, step=1, help=tip, key=key
            )
        elif isinstance(current, float):
            value = column.number_input(
                label, value=current, min_value=0.0, format="%g", help=tip, key=key
            )
        else:
            value = column.text_input(label, value=str(current), help=tip, key=key)
        if value != current:
            changed[name] = value
    return changed


def _show_estimate(estimate: estimates.Estimate, what: str) -> None:
    cols = st.columns(3)
    cols[0].metric(f"Estimated {what} time", fmt.fmt_duration(estimate.seconds))
    cols[1].metric("Estimated peak memory", f"{estimate.memory_gb:.1f} GB")
    cols[2].metric("Fits in memory", "yes" if estimate.fits else "no")
    st.caption(("Measured: " if estimate.measured else "Estimate: ") + estimate.basis)
    for warning in estimate.warnings:
        st.warning(warning, icon=":material/warning:")


def _submit(db, kind: str, params: dict) -> int | None:
    try:
        job_id = queue.submit(db, kind, params)
    except Exception as exc:  # errors a user can cause, with a message that says what to do
        st.error(f"Not started: {exc}")
        return None
    worker.ensure_worker()
    return job_id


def main() -> None:
    st.title("Run a model")
    st.caption(
        "Pick a model, then evaluate it as it is, or also fine-tune it on a task and compare the two."
    )
    db = common.get_db()
    hw = _hardware()
    st.info(f"Hardware found: {hw.summary()}", icon=":material/memory:")

    entry = _model_picker(db)
    mode = st.radio("What to do", [EVALUATE, FINETUNE], horizontal=True)
    specs = task_specs.list_tasks()
    names = [s.name for s in specs]

    if mode == EVALUATE:
        chosen = st.multiselect(
            "Tasks", names, default=names, help="Each task is scored on its test split."
        )
        if chosen:
            specs_chosen = [task_specs.get_task(n) for n in chosen]
            _show_estimate(estimates.estimate_evals(entry, specs_chosen, hw, db), "evaluation")
        if st.button("Start evaluation", type="primary", disabled=not chosen):
            job_id = _submit(db, "eval", {"model_id": entry.id, "tasks": chosen})
            if job_id:
                st.session_state["selected_job"] = job_id
                common.switch_page("views/jobs.py")
        return

    cols = st.columns(3)
    task = cols[0].selectbox(
        "Task or dataset",
        names,
        index=names.index("fin_sentiment") if "fin_sentiment" in names else 0,
        help="Trained on its train split; base and fine-tuned are scored on the same test items.",
    )
    method = cols[1].selectbox(
        "Method", list(train_config.METHODS), format_func=train_config.method_label
    )
    presets = train_config.presets()
    preset = cols[2].selectbox(
        "Preset",
        list(presets),
        format_func=lambda p: p,
        help="Named settings from configs/presets/.",
    )
    st.caption(presets[preset].get("description", ""))
    base_config = train_config.preset_config(preset, {"method": method})
    with st.expander("Advanced hyperparameters"):
        overrides = _advanced(base_config)
    try:
        config = train_config.preset_config(preset, {"method": method, **overrides})
    except ValueError as exc:
        st.error(str(exc))
        return
    estimate = estimates.estimate_training(entry, task_specs.get_task(task), config, hw, db)
    _show_estimate(estimate, "training")
    if st.button("Start: fine-tune and compare", type="primary"):
        params = {
            "model_id": entry.id,
            "task": task,
            "preset": preset,
            "method": method,
            "overrides": overrides,
        }
        job_id = _submit(db, "finetune_compare", params)
        if job_id:
            st.session_state["selected_job"] = job_id
            common.switch_page("views/jobs.py")


main()
