"""Playground: one text, two models, both answers side by side.

Thin page: the models run in the playground's model server process
(``core.workflows.playground``), never in this script; the page sends the question and lays out
the two answers (label probabilities or generated text, and how long each took).
"""

from __future__ import annotations

import streamlit as st

from core import format as fmt
from core.analysis import comparison as cmp
from core.analysis import svg
from core.models import registry
from core.tasks import spec as task_specs
from core.tasks.prompts import readable_prompt
from core.workflows.playground import PlaygroundClient, PlaygroundError
from streamlit_app import charts, common

EXAMPLES = 12  # test items offered as examples
COLORS = (fmt.PALETTE["base"], fmt.PALETTE["tuned"])


@st.cache_resource(show_spinner=False)
def client(db_path: str) -> PlaygroundClient:
    """One client per store (the server process it talks to outlives page reruns)."""
    return PlaygroundClient()


@st.cache_data(ttl=30, show_spinner=False)
def examples(task: str) -> list[str]:
    spec = task_specs.get_task(task)
    items = task_specs.load_split(spec, "test").items[:EXAMPLES]
    return [next(iter(item.fields.values())) for item in items]


def default_pair(latest: dict | None, models: list[str]) -> tuple[str, str]:
    """The newest base / fine-tuned pair, else the first two models."""
    if latest and {latest["base_model_id"], latest["finetuned_model_id"]} <= set(models):
        return latest["base_model_id"], latest["finetuned_model_id"]
    return models[0], models[min(1, len(models) - 1)]


def default_task(latest: dict | None, tasks: list[str]) -> str:
    """The task the newest pair was compared on (the fine-tune's own), else fin_sentiment."""
    for name in (latest["task"] if latest else None, "fin_sentiment"):
        if name in tasks:
            return name
    return tasks[0]


def probability_chart(probabilities: dict[str, float], color: str) -> str:
    rows = [(label, share, None, color) for label, share in probabilities.items()]
    return svg.svg_hbars(
        rows, "probability", x_max=1.0, value_format=".0%", title="label probabilities"
    )


def answer_panel(column, name: str, reply: dict, color: str) -> None:
    with column.container(border=True):
        st.markdown(f"**{name}**")
        if not reply.get("ok"):
            st.error(reply.get("error") or "no answer")
            return
        st.metric("Answer", reply["answer"] if reply["answer"] is not None else "(unparseable)")
        if reply.get("probabilities"):
            charts.show(probability_chart(reply["probabilities"], color))
            if reply.get("calibrated"):
                st.caption("Calibrated probabilities (the task calibrates, as in evaluation).")
        else:
            common.code_block(reply["output"] or "(empty)")
        load = f" + {fmt.fmt_ms(reply['load_ms'])} to load the model" if reply["load_ms"] else ""
        st.caption(f"Answered in {fmt.fmt_ms(reply['latency_ms'])}{load}.")


def main() -> None:
    st.title("Playground")
    st.caption(
        "Type a text (or pick one of the task's test items), choose two models, and see both "
        "answers side by side, computed exactly as the evaluation scores an item."
    )
    db = common.get_db()
    # the model server answers with LLMs (prompts, generation); encoders are not served here
    entries = [e for e in registry.list_models(db) if e.model_kind != "encoder"]
    names = {e.id: e.display_name for e in entries}
    models = list(names)
    tasks = [s.name for s in task_specs.list_tasks()]
    latest = cmp.latest_pair(db)
    first, second = default_pair(latest, models)
    task_col, pick_col = st.columns([1, 2])
    task = task_col.selectbox(
        "Task", tasks, index=tasks.index(default_task(latest, tasks)), key="play_task"
    )
    picked = pick_col.selectbox(
        "Example (from the test split)",
        ["(type your own)", *examples(task)],
        key=f"play_example_{task}",
    )
    text = st.text_area(
        "Text",
        value="" if picked == "(type your own)" else picked,
        height=100,
        key=f"play_text_{task}_{picked[:40]}",
        placeholder="e.g. Shares of Acme fell 8% after the company cut its full-year outlook.",
    )
    left, right = st.columns(2)
    model_a = left.selectbox(
        "Model A", models, index=models.index(first), format_func=names.get, key="play_a"
    )
    model_b = right.selectbox(
        "Model B", models, index=models.index(second), format_func=names.get, key="play_b"
    )
    if st.button("Ask both", type="primary", icon=":material/send:", disabled=not text.strip()):
        service = client(common.db_path())
        replies = []
        with st.spinner("Asking both models (the first question to a model loads it)…"):
            try:
                replies = [service.ask(model, task, text) for model in (model_a, model_b)]
            except (PlaygroundError, OSError) as exc:
                st.error(f"The model server did not answer: {exc}")
        if replies:
            st.session_state["play_replies"] = {
                "task": task,
                "text": text,
                "models": [model_a, model_b],
                "replies": replies,
            }
    shown = st.session_state.get("play_replies")
    if shown:
        if shown["text"] != text or shown["task"] != task:
            st.caption("The answers below are for the previous text: **Ask both** again.")
        columns = st.columns(2)
        for column, model, reply, color in zip(
            columns, shown["models"], shown["replies"], COLORS, strict=True
        ):
            answer_panel(column, names.get(model, model), reply, color)
        with st.expander("The prompt the models saw"):
            spec = task_specs.get_task(task)
            st.caption(f"Task {spec.name} v{spec.version}; chat models see it in their template.")
            prompt = spec.template.format(text=shown["text"], prompt=shown["text"])
            common.code_block(readable_prompt(prompt))


main()
