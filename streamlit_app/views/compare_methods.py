"""Compare methods: LoRA, QLoRA and prompt tuning on the same data and budget, side by side.

Thin page: the form queues one job per method (``core.workflows.compare_methods``); the table,
the QLoRA memory report and the training curves are read from those jobs.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import format as fmt
from core.analysis import svg
from core.jobs import worker
from core.models import registry
from core.tasks import spec as task_specs
from core.training import config as train_config
from core.workflows import compare_methods as cm
from streamlit_app import charts, common

METHOD_COLORS = {"lora": fmt.PALETTE["base"], "qlora": fmt.PALETTE["tuned"]}


def start_form(db) -> None:
    with st.form("cm_form"):
        cols = st.columns([3, 2, 2, 4])  # the methods box holds three labelled chips
        names = {e.id: e.display_name for e in registry.base_models()}
        bases = list(names)
        default = registry.default_model_id()
        model_id = cols[0].selectbox(
            "Base model",
            bases,
            index=bases.index(default) if default in bases else 0,
            format_func=lambda model: names.get(model, model),
        )
        tasks = [s.name for s in task_specs.list_tasks()]
        task = cols[1].selectbox(
            "Task", tasks, index=tasks.index("fin_sentiment") if "fin_sentiment" in tasks else 0
        )
        presets = list(train_config.presets())
        preset = cols[2].selectbox(
            "Preset (the shared budget)",
            presets,
            index=presets.index("quick") if "quick" in presets else 0,
        )
        methods = cols[3].multiselect(
            "Methods",
            list(cm.METHODS),
            default=list(cm.METHODS),
            format_func=train_config.method_label,
        )
        started = st.form_submit_button("Start comparison", type="primary")
    if started:
        try:
            group, job_ids = cm.submit_comparison(db, model_id, task, methods, preset)
        except Exception as exc:  # errors a user can cause, said in words
            st.error(f"Not started: {exc}")
            return
        worker.ensure_worker()
        st.success(f"Comparison {group} queued: jobs {', '.join(map(str, job_ids))}.")


def curves_chart(curves: dict[str, list[dict]]) -> str | None:
    series = []
    palette = list(fmt.PALETTE.values())
    for index, (method, rows) in enumerate(curves.items()):
        points = [(r["step"], r["train_loss"]) for r in rows if r.get("train_loss") is not None]
        if points:
            color = METHOD_COLORS.get(method, palette[(index + 2) % len(palette)])
            series.append(
                (
                    train_config.method_label(method),
                    color,
                    [p[0] for p in points],
                    [p[1] for p in points],
                )
            )
    if not series:
        return None
    return svg.svg_lines(
        series, "optimizer step", "train loss per completion token", title="training curves"
    )


def metric_chart(rows: list[dict]) -> str | None:
    """Each finished method's test metric with its 95% CI, one bar each."""
    done = [r for r in rows if r.get("score") is not None]
    if not done:
        return None
    metric = done[0].get("metric") or "score"
    return svg.svg_grouped_bars(
        [train_config.method_label(r["method"]) for r in done],
        [
            (
                f"test {metric}",
                fmt.PALETTE["tuned"],
                [r["score"] for r in done],
                [r.get("ci") for r in done],
            )
        ],
        f"test {metric} (95% CI)",
        1.0 if all(0 <= r["score"] <= 1 for r in done) else None,
    )


def memory_section(rows: list[dict]) -> None:
    for row in rows:
        report = row.get("memory_report")
        if not report:
            continue
        st.markdown(
            f"**QLoRA memory** ({report['measured']}): base weights "
            f"**{fmt.fmt_mb(report['base_4bit_mb'])}** in 4-bit against "
            f"**{fmt.fmt_mb(report['base_full_mb'])}** in {report['full_dtype']} — "
            f"**{report['reduction_percent']}%** less; the tensors alone "
            f"{fmt.fmt_mb(report['tensor_4bit_mb'])} vs {fmt.fmt_mb(report['tensor_full_mb'])} "
            f"({report['tensor_reduction_percent']}% less). Peak training memory "
            f"{fmt.fmt_mb(report['peak_training_mb'])} ({report['peak_training_what']})."
        )


def results(db) -> None:
    found = cm.group_labels(db)
    if not found:
        st.info("No method comparison yet: start one above, or run `finboard compare-methods`.")
        return
    group = st.selectbox(
        "Comparison",
        list(found),
        index=0,
        key="cm_group",
        format_func=lambda g: found.get(g, g),
        help="Newest first.",
    )
    rows = cm.methods_table(db, group)
    st.subheader("Side by side")
    common.static_table(pd.DataFrame(cm.text_rows(rows), columns=cm.TABLE_HEADERS))
    st.caption(
        "Same training examples, epochs, batch size, sequence length and seed for every method "
        "(prompt tuning uses its own preset's learning rate). Test metric on the task's test "
        "split; items/s is the evaluation's inference speed."
    )
    memory_section(rows)
    for row in rows:
        if row.get("error"):
            st.error(f"{row['method']}: {row['error']}")
    left, right = st.columns([3, 2])
    chart = curves_chart(cm.curves(db, group))
    if chart:
        charts.show(chart, left)
    bars = metric_chart(rows)
    if bars:
        charts.show(bars, right)


def main() -> None:
    st.title("Compare methods")
    st.caption(
        "LoRA, QLoRA and prompt tuning trained on the same data with the same budget, one job "
        "each: trainable parameters, time, memory, adapter size, losses, test metric and speed."
    )
    db = common.get_db()
    start_form(db)
    results(db)


main()
