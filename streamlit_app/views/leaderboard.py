"""Leaderboard: every scored model ranked on the finance tasks, and the record behind each score.

Thin page: the table comes from ``core.leaderboard``, model facts from ``core.registry``;
this file only filters, formats and renders. Predictions are read for one score at a time.
"""

from __future__ import annotations

import html
import json
import math

import pandas as pd
import streamlit as st

from core import format as fmt
from core import paths
from core.analysis import comparison as cmp
from core.analysis import leaderboard as lb
from core.analysis import svg
from core.evaluation import calibration_choice
from core.models import registry
from core.tasks import spec as task_specs
from core.tasks.prompts import readable_prompt
from core.training.config import method_label
from core.workflows import export
from streamlit_app import charts, common, slices_view

CHART_MAX_MODELS = 25
KIND_COLORS = {"base": fmt.PALETTE["base"], "finetuned": fmt.PALETTE["tuned"]}
TRAINED_MARK = "⚠"
STATIC_BOARD_ROWS = 40  # up to this many models, a static table; more, the sortable grid
ALL_TABS = ["Reproducibility", "Per-item results", "Training card", "Robustness slices"]


# ---------------------------------------------------------------- cached reads through core


@st.cache_data(ttl=5, show_spinner=False, max_entries=64)
def load_table(path: str, latest_id: int, tasks: tuple[str, ...]) -> pd.DataFrame:
    """The ranked table on ``tasks`` (all when empty); ``latest_id`` only keys the cache."""
    return lb.leaderboard(common.open_db(path), list(tasks) or None)


@st.cache_data(ttl=5, show_spinner=False, max_entries=32)
def load_details(path: str, latest_id: int, model_id: str) -> pd.DataFrame:
    """Every score row of one model, newest first."""
    return pd.DataFrame(lb.score_details(common.open_db(path), model_id))


@st.cache_data(ttl=300, show_spinner=False, max_entries=32)
def load_predictions(path: str, score_id: int, wrong_only: bool) -> pd.DataFrame:
    return lb.predictions(common.open_db(path), score_id, wrong_only=wrong_only)


@st.cache_data(ttl=60, show_spinner=False)
def task_info(user_tasks_dir: str) -> dict[str, dict]:
    """Description and primary metric of each task, for column tooltips (empty if unreadable)."""
    try:
        specs = task_specs.list_tasks()
    except task_specs.TaskSpecError:
        return {}
    return {s.name: {"description": s.description, "metric": s.primary_metric} for s in specs}


# ---------------------------------------------------------------- pieces of the page


def start_demo() -> None:
    from core.jobs import worker
    from core.workflows.demo import submit_demo

    try:
        job_ids = submit_demo(common.get_db())
    except Exception as exc:  # a model or task that cannot be used: say what, keep the page
        st.error(f"The demo could not start: {exc}")
        return
    worker.ensure_worker()
    st.session_state["followed_jobs"] = job_ids  # the Jobs page moves along the chain
    st.session_state.pop("selected_job", None)
    common.switch_page("views/jobs.py")


def empty_state() -> None:
    st.info(
        "**No scores yet.** The leaderboard fills up as models are evaluated: each run "
        "scores one model on one task and stores the result with everything needed to "
        "reproduce it. Run the demo, start a run from **Run a model**, or use the terminal.",
        icon=":material/inbox:",
    )
    if st.button(
        "Run the demo",
        type="primary",
        icon=":material/play_arrow:",
        help="Queues real runs: the embedded models on every built-in task, then a quick LoRA fine-tune and its comparison.",
    ):
        start_demo()
    common.code_block(
        "# score the default model on the sentiment task (add --limit 50 for a quick try)\n"
        "finboard eval --model smollm2-135m-instruct --task fin_sentiment\n\n"
        "# or fill the board with a ready-made demo run\n"
        "finboard demo"
    )
    st.caption(f"Store: `{common.db_path()}`")


def filters(full: pd.DataFrame, task_names: list[str]) -> dict:
    """The filter row; an empty choice means no filter."""
    with st.container(border=True):
        kind_col, method_col, size_col = st.columns([1.1, 1.4, 2.4])
        kinds = [k for k in ("base", "finetuned") if k in set(full["kind"])]
        kinds += sorted(set(full["kind"]) - set(kinds))
        chosen_kinds = kind_col.pills(
            "Model kind",
            kinds,
            selection_mode="multi",
            format_func=common.kind_label,
            key="lb_kinds",
            help="Leave empty for every kind.",
        )
        methods = sorted({m for m in full["method"].dropna()})
        # pills, not multiselects: a handful of options each, and a multiselect box costs
        # the page load about twice as much in the browser
        chosen_methods = None
        if methods:
            chosen_methods = method_col.pills(
                "Fine-tuning method",
                methods,
                selection_mode="multi",
                format_func=method_label,
                key="lb_methods",
                help="Only fine-tuned models trained with these methods (base models are "
                "hidden). None chosen: every method.",
            )
        else:
            method_col.markdown(":small[Fine-tuning method]")
            method_col.caption("No fine-tuned models yet")
        sizes = sorted({int(p) for p in full["params"].dropna()})
        size_range = None
        if len(sizes) >= 2:
            size_range = size_col.select_slider(
                "Size (parameters)",
                options=sizes,
                value=(sizes[0], sizes[-1]),
                format_func=fmt.fmt_params,
                key="lb_sizes",
            )
        else:
            size_col.markdown(":small[Size (parameters)]")
            size_col.caption(
                f"All models: {fmt.fmt_params(sizes[0])}" if sizes else "Sizes unknown"
            )
        chosen_tasks = st.pills(  # a row of its own: every task in view, however many
            "Tasks",
            task_names,
            selection_mode="multi",
            key="lb_tasks",
            help="The overall score and the ranks are recomputed on the chosen tasks. None "
            "chosen: every task.",
        )
    return {
        "kinds": chosen_kinds or [],
        "methods": chosen_methods or [],
        "sizes": size_range,
        "all_sizes": (sizes[0], sizes[-1]) if sizes else None,
        "tasks": chosen_tasks or [],
    }


def apply_filters(table: pd.DataFrame, chosen: dict) -> pd.DataFrame:
    keep = pd.Series(True, index=table.index)
    if chosen["kinds"]:
        keep &= table["kind"].isin(chosen["kinds"])
    if chosen["methods"]:
        keep &= table["method"].isin(chosen["methods"])
    if chosen["sizes"] and tuple(chosen["sizes"]) != chosen["all_sizes"]:
        low, high = chosen["sizes"]
        keep &= table["params"].between(low, high)  # unknown sizes drop out of a narrowed range
    return table[keep]


def display_frame(
    table: pd.DataFrame, task_names: list[str], names: dict[str, str]
) -> pd.DataFrame:
    """The table as shown: one formatted row per model, compact enough for a 1280 px screen."""
    partial = ~table["complete"].astype(bool)
    frame = pd.DataFrame(
        {
            "rank": [
                f"{int(r)}" if not p else f"({int(r)})"
                for r, p in zip(table["rank"], partial, strict=True)
            ],
            "model": table["display_name"],
            "kind": [
                method_label(m) if k == "finetuned" and m else common.kind_label(k)
                for k, m in zip(table["kind"], table["method"], strict=True)
            ],
            "type": table["model_type"].fillna("LLM"),
            "params": table["params"],
            "overall": table["overall"],
            "overall_ci": [
                fmt.MISSING if math.isnan(lo) or math.isnan(hi) else f"{lo:.2f}–{hi:.2f}"
                for lo, hi in zip(table["overall_low"], table["overall_high"], strict=True)
            ],
            "tasks_scored": [
                f"{int(n)}/{len(task_names)}" + (" partial" if p else "")
                for n, p in zip(table["tasks_scored"], partial, strict=True)
            ],
        },
        index=table.index,
    )
    if not partial.any():
        frame = frame.drop(columns="tasks_scored")
    for task in task_names:
        frame[f"task:{task}"] = [
            fmt.fmt_ci(v, lo, hi, style="pm") + (f" {TRAINED_MARK}" if trained == task else "")
            for v, lo, hi, trained in zip(
                table[task],
                table[f"{task}_low"],
                table[f"{task}_high"],
                table["trained_on_task"],
                strict=True,
            )
        ]
    return frame.reset_index(drop=True)


def column_texts(task_names: list[str], info: dict[str, dict]) -> dict[str, tuple[str, str]]:
    """Each column's header and hover text, for either way the board is drawn."""
    texts = {
        "rank": (
            "Rank",
            "1 + the number of shown models whose overall 95% interval lies wholly above this "
            "one's: overlapping intervals share a rank. (Ranks in brackets: scored on fewer "
            "tasks, ranked apart.)",
        ),
        "model": ("Model", ""),
        "kind": ("Kind", "base, or the method a fine-tuned model was trained with."),
        "type": (
            "Type",
            "LLM, encoder (a classifier scored by its heads), external (predictions imported "
            "from another system, e.g. a hosted API) or baseline (the majority class).",
        ),
        "params": ("Params", "Parameters of the model (a fine-tune: of its base)."),
        "overall": ("Overall", "Mean of the tasks' primary metrics."),
        "overall_ci": ("95% CI", "Mean of the per-task 95% bootstrap interval bounds."),
        "tasks_scored": (
            "Tasks",
            "Tasks this model has a full test score on. A partial row's overall is a mean "
            "over other tasks, so it is ranked apart, below the complete rows.",
        ),
    }
    for task in task_names:
        meta = info.get(task, {})
        tip = (
            f"{meta.get('metric', 'primary metric')} on the test split ± half its 95% CI; "
            f"{TRAINED_MARK}: the model was fine-tuned on this task. "
        )
        texts[f"task:{task}"] = (task, tip + meta.get("description", ""))
    return texts


WIDTHS = {"rank": 48, "model": 320, "kind": 85, "type": 70, "params": 55}
WIDTHS |= {"overall_ci": 72, "tasks_scored": 80}


def column_config(task_names: list[str], info: dict[str, dict], bounded: bool) -> dict:
    """The grid's columns (a board too long for the static table)."""
    config = {}
    for key, (label, tip) in column_texts(task_names, info).items():
        if key == "params":
            config[key] = st.column_config.NumberColumn(label, format="compact", width=55)
        elif key == "overall" and bounded:
            config[key] = st.column_config.ProgressColumn(
                label,
                format="%.3f",
                min_value=0.0,
                max_value=1.0,
                width=90,
                color=KIND_COLORS["base"],
                help=tip,
            )
        elif key == "overall":
            config[key] = st.column_config.NumberColumn(label, format="%.3f", width=80, help=tip)
        else:
            config[key] = st.column_config.TextColumn(
                label,
                width=WIDTHS.get(key, 108),
                pinned=key in ("rank", "model") or None,
                help=tip or None,
            )
    return config


def _overall_cell(value: float, bounded: bool) -> str:
    """The overall score, with a bar of its share of 1 when scores are bounded."""
    if value is None or math.isnan(value):
        return fmt.MISSING
    text = f"{value:.3f}"
    if not bounded:
        return text
    width = max(0.0, min(1.0, value)) * 100
    return (
        f'<span class="fb-bar"><span style="width: {width:.1f}%; '
        f'background: {KIND_COLORS["base"]}"></span></span>{text}'
    )


def show_board(frame: pd.DataFrame, task_names: list[str], info: dict, bounded: bool) -> None:
    """A board of a few dozen models as a static table (a grid costs about a quarter of a
    second of every page load on a small machine); a longer one in the sortable grid."""
    if len(frame) <= STATIC_BOARD_ROWS:
        # rank and model kept in view while the task columns scroll sideways (CSS: fb-board)
        texts = column_texts(task_names, info)
        params = [fmt.fmt_params(v) if pd.notna(v) else fmt.MISSING for v in frame["params"]]
        shown = frame.assign(params=params).rename(columns={k: texts[k][0] for k in frame})
        common.static_table(
            shown,
            tooltips={label: tip for label, tip in texts.values() if tip},
            column_classes={texts["rank"][0]: "fb-stick1", texts["model"][0]: "fb-stick2"},
            cell_html={texts["overall"][0]: lambda value: _overall_cell(value, bounded)},
            wrapper_class="fb-board",
        )
        return
    st.caption(f"{len(frame)} models: click a column's header to sort by it.")
    st.dataframe(
        frame,
        hide_index=True,
        column_config=column_config(task_names, info, bounded),
        key="lb_table",
    )


def chart_labels(table: pd.DataFrame) -> list[str]:
    """Display names, with the id added where two models share one."""
    counts = table["display_name"].value_counts()
    return [
        f"{name} ({mid})" if counts[name] > 1 else name
        for name, mid in zip(table["display_name"], table["model_id"], strict=True)
    ]


def overall_chart(table: pd.DataFrame, bounded: bool) -> str:
    """Horizontal bars of the overall score with the CI as whiskers, best on top."""
    top = table.sort_values("overall", ascending=False, kind="stable").head(CHART_MAX_MODELS)
    rows = [
        (label, overall, [low, high], KIND_COLORS.get(kind, "#9D9D9D"))
        for label, overall, low, high, kind in zip(
            chart_labels(top),
            top["overall"],
            top["overall_low"],
            top["overall_high"],
            top["kind"],
            strict=True,
        )
    ]
    return svg.svg_hbars(
        rows,
        "Overall score (mean of the tasks' primary metrics), with 95% CI",
        x_max=1.0 if bounded else None,
        title="overall score by model",
    )


def _bold(text: object) -> str:
    return f"<b>{html.escape(str(text))}</b>"


def _code(text: object) -> str:
    return f"<code>{html.escape(str(text))}</code>"


def score_card_html(row: pd.Series) -> str:
    """What a score was measured on and how to re-run it, as HTML."""
    esc = html.escape
    limit = f" (first {int(row['item_limit'])})" if pd.notna(row.get("item_limit")) else ""
    heading = (
        f"{_bold(row['task'])} v{esc(str(row['task_version']))} · {esc(row['primary_metric'])} "
        f"{_bold(fmt.fmt_ci(row['primary_value'], row['ci_low'], row['ci_high']))} · "
        f"{esc(str(row['n_items']))} {esc(row['split'])} items{esc(limit)} · "
        f"{esc(str(row['created_at']))} · score #{esc(str(row['id']))}"
    )
    seconds = row.get("seconds")
    run_time = [f"Run time {_bold(f'{seconds:.1f} s')}"] if pd.notna(seconds) else []
    columns = [
        [
            f"Split fingerprint {_code(fmt.short_hash(row['split_fingerprint']))}",
            f"Weights hash {_code(fmt.short_hash(row['weights_hash']))}",
            f"Prompt hash {_code(fmt.short_hash(row['prompt_hash']))}",
        ],
        [
            f"Shots {_bold(row['num_shots'])}",
            f"Seed {_bold(row['seed'])}",
            f"Batch size {_bold(row['batch_size'])}",
        ],
        [f"dtype {_bold(row['dtype'])}", f"Device {_bold(row['device'])}", *run_time],
        [
            f"Throughput {_bold(fmt.fmt_rate(row['items_per_s']))}",
            f"Latency p50 {_bold(fmt.fmt_ms(row['latency_p50_ms']))}",
            f"Latency p95 {_bold(fmt.fmt_ms(row['latency_p95_ms']))}",
        ],
    ]
    grid = "".join(f"<div>{'<br>'.join(lines)}</div>" for lines in columns)
    notes = []
    metrics = json.loads(row.get("metrics_json") or "{}")
    others = [
        f"{name} {fmt.fmt_ci(m.get('value'), *(m.get('ci') or [None, None]))}"
        for name, m in metrics.items()
        if isinstance(m, dict) and "value" in m
    ]
    if others:
        notes.append(esc("Metrics: " + " · ".join(others)))
    if answered := calibration_choice.primary_label(metrics):
        choice = metrics["calibration_choice"]
        notes.append(
            f"Primary metric: {_bold(answered)} answers (validation accuracy calibrated "
            f"{esc(fmt.fmt_score(choice['validation_calibrated']))}, uncalibrated "
            f"{esc(fmt.fmt_score(choice['validation_uncalibrated']))}; {esc(choice['rule'])})."
        )
    versions = json.loads(row.get("versions_json") or "{}")
    if versions:
        notes.append(
            esc("Versions: " + " · ".join(f"{k} {v}" for k, v in sorted(versions.items())))
        )
    command = row["command"] or "(no command stored)"
    hashes = (
        f"split fingerprint  {row['split_fingerprint']}\n"
        f"weights hash       {row['weights_hash']}\n"
        f"prompt hash        {row['prompt_hash']}"
    )
    return (
        f'<div class="fb-card fb-bordered"><div>{heading}</div>'
        f'<div class="fb-card-grid">{grid}</div>'
        + "".join(f'<div class="fb-muted">{note}</div>' for note in notes)
        + f'<pre class="{common.CODE_CLASS}">{esc(command)}</pre>'
        # the browser's own disclosure: no Streamlit expander (and its rerun) per card
        + f'<details><summary class="fb-muted">Full hashes</summary>'
        f'<pre class="{common.CODE_CLASS}">{esc(hashes)}</pre></details></div>'
    )


def score_card(row: pd.Series) -> None:
    """The reproducibility record of one score row: one HTML block, the full hashes folded
    in it (a few Streamlit elements per task added up to a tenth of a second of the load)."""
    st.html(score_card_html(row))


def board_rows(details: pd.DataFrame, task_names: list[str]) -> pd.DataFrame:
    """The score rows the leaderboard uses: the newest test score per shown task."""
    if details.empty:
        return details
    test = details[(details["split"] == "test") & details["task"].isin(task_names)]
    return test.drop_duplicates("task").sort_values("task")  # details are newest first


def reproducibility_tab(details: pd.DataFrame, shown: pd.DataFrame) -> None:
    if shown.empty:
        st.info("This model has no test-split score on the chosen tasks.")
    else:
        st.caption(
            "The scores on the board, each with what it was measured on and how to re-run it."
        )
        for _, row in shown.iterrows():
            score_card(row)
    runs = st.expander(
        f"Every run of this model ({len(details)})", key="lb_every_run", on_change="rerun"
    )
    with runs:
        if runs.open is not False:
            history = details[
                [
                    "id",
                    "task",
                    "split",
                    "task_version",
                    "n_items",
                    "primary_value",
                    "ci_low",
                    "ci_high",
                    "split_fingerprint",
                    "created_at",
                    "command",
                ]
            ]
            st.dataframe(
                history,
                hide_index=True,
                column_config={
                    "id": st.column_config.NumberColumn("Score #", width=70),
                    "task_version": st.column_config.NumberColumn("Version", width=60),
                    "n_items": st.column_config.NumberColumn("Items", width=60),
                    "primary_value": st.column_config.NumberColumn("Score", format="%.3f"),
                    "ci_low": st.column_config.NumberColumn("CI low", format="%.3f"),
                    "ci_high": st.column_config.NumberColumn("CI high", format="%.3f"),
                    "split_fingerprint": st.column_config.TextColumn("Split fingerprint"),
                    "created_at": st.column_config.TextColumn("When"),
                    "command": st.column_config.TextColumn("Command", width="large"),
                },
            )


def items_tab(path: str, shown: pd.DataFrame) -> None:
    if shown.empty:
        st.info("This model has no test-split score on the chosen tasks.")
        return
    pick, toggle, _ = st.columns([2, 1, 2], vertical_alignment="bottom")
    task = pick.selectbox("Task", list(shown["task"]), key="lb_items_task")
    wrong_only = toggle.toggle("Wrong only", key="lb_wrong_only")
    score = shown[shown["task"] == task].iloc[0]
    items = load_predictions(path, int(score["id"]), wrong_only)
    total = int(score["n_items"])
    if wrong_only:
        st.caption(f"{len(items)} of {total} items answered wrong (score #{score['id']}).")
    elif not items.empty:
        st.caption(f"{int(items['correct'].sum())} of {total} items right (score #{score['id']}).")
    if items.empty:
        st.success("No wrong answers." if wrong_only else "No per-item results stored.")
        return
    calibrated = "calibrated" in items and items["calibrated"].notna().any()
    if calibrated:
        st.caption(
            "This task is calibrated: the answer is the label with the highest **calibrated** "
            "probability (each label's likelihood divided by its likelihood for content-free "
            "inputs), which can differ from the highest raw log-likelihood in the model output."
        )
    view = pd.DataFrame(
        {
            "position": items["position"] + 1,
            "correct": items["correct"].astype(bool),
            "gold": items["gold"],
            "parsed": items["parsed"].fillna("(unparseable)"),
            "raw_output": items["raw_output"].fillna("").replace("", "(empty)"),
            "prompt_end": [
                "…" + p[-160:].strip() if len(p) > 160 else p
                for p in items["prompt"].astype(str).map(readable_prompt)
            ],
        }
    )
    if calibrated:
        view.insert(4, "calibrated", items["calibrated"].fillna(""))
    event = st.dataframe(
        view,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key=f"lb_items_table_{score['id']}_{wrong_only}",  # a new selection per view
        column_config={
            "position": st.column_config.NumberColumn("#", width=45),
            "correct": st.column_config.CheckboxColumn("Right", width=55),
            "gold": st.column_config.TextColumn("Gold", width="small"),
            "parsed": st.column_config.TextColumn("Parsed answer", width="small"),
            "calibrated": st.column_config.TextColumn(
                "Calibrated (chosen from)", width="medium", help="Calibrated label probabilities."
            ),
            "raw_output": st.column_config.TextColumn(
                "Model output", width="medium", help="Raw label log-likelihoods, or the text."
            ),
            "prompt_end": st.column_config.TextColumn(
                "Prompt (end)", width="large", help="Select a row to read its whole prompt."
            ),
        },
    )
    rows = getattr(getattr(event, "selection", None), "rows", None) or []
    if rows and rows[0] < len(items):
        chosen = items.iloc[rows[0]]
        verdict = "right" if chosen["correct"] else "wrong"
        st.markdown(
            f"**Item {chosen['item_id']}** · gold `{chosen['gold']}` · "
            f"parsed `{chosen['parsed'] or '(unparseable)'}` · {verdict}"
        )
        prompt_col, output_col = st.columns([3, 1])
        prompt_col.caption("Prompt")
        common.code_block(readable_prompt(chosen["prompt"]), prompt_col)
        output_col.caption("Model output")
        common.code_block(chosen["raw_output"] or "(empty)", output_col)


CARD_FIELDS = {  # card key -> (label, how to show it)
    "train_examples": ("Training examples", lambda v: f"{v:,}"),
    "steps": ("Optimizer steps", lambda v: f"{v:,}"),
    "status": ("Outcome", str),
    "train_seconds": ("Training time", fmt.fmt_duration),
    "wall_seconds": ("Wall time", fmt.fmt_duration),
    "tokens_per_s": ("Throughput", lambda v: f"{v:,.0f} tokens/s"),
    "peak_memory_mb": ("Peak memory", fmt.fmt_mb),
    "final_train_loss": ("Final train loss", lambda v: fmt.fmt_score(v, 4)),
    "final_val_loss": ("Final validation loss", lambda v: fmt.fmt_score(v, 4)),
    "best_val_loss": ("Best validation loss", lambda v: fmt.fmt_score(v, 4)),
    "energy_wh": ("Energy", lambda v: fmt.fmt_energy(v / 1000)),
    "device": ("Device", str),
    "dtype": ("Compute dtype", str),
}


def card_rows(card: dict) -> pd.DataFrame:
    """The card's facts, formatted with their units (energy "not measured" when absent)."""
    rows = []
    for key, (label, show) in CARD_FIELDS.items():
        value = card.get(key)
        if key == "energy_wh" and value is None:
            rows.append((label, "not measured (no NVIDIA GPU)"))
        elif value is not None:
            rows.append((label, show(value)))
    return pd.DataFrame(rows, columns=["field", "value"])


def training_tab(model_id: str, names: dict[str, str]) -> None:
    db = common.get_db()
    try:
        entry = registry.get_model(model_id, db)
    except registry.RegistryError as exc:
        st.warning(f"This model is not in the registry any more: {exc}")
        return
    if not entry.is_finetuned:
        st.info(
            f"{entry.display_name} is a base model: it was not fine-tuned here, so it has no "
            "training card. Fine-tuned models show their training record here."
        )
        return
    card = entry.card or {}
    total = card.get("total_params")
    share = (
        f" ({fmt.fmt_share(entry.trainable_params, total)} of {fmt.fmt_params(total)})"
        if entry.trainable_params and total
        else ""
    )
    base = entry.base_model_id or ""
    facts = {
        "Base model": f"{names.get(base, base)} · {base}" if base else None,
        "Method": method_label(entry.method),
        "Trained on task": entry.trained_on_task,
        "Trainable parameters": fmt.fmt_params(entry.trainable_params) + share,
        "Adapter": f"`{entry.adapter_path}`" if entry.adapter_path else None,
    }
    left, right = st.columns([1, 1])
    left.markdown(
        "  \n".join(f"{k}: **{v if v is not None else fmt.MISSING}**" for k, v in facts.items())
    )
    if card:
        right.dataframe(
            card_rows(card),
            hide_index=True,
            column_config={
                "field": st.column_config.TextColumn("Fact", width="medium"),
                "value": st.column_config.TextColumn("Value", width="medium"),
            },
        )
    else:
        st.caption("The training job stored no card for this model.")
    curve = cmp.training_curve(db, entry)
    if curve:
        charts.show(charts.loss_curve(curve, height=260))
    hyper = card.get("hyperparameters") or {}
    if hyper:
        with st.expander("Hyperparameters"):
            st.dataframe(
                pd.DataFrame({"setting": list(hyper), "value": [str(v) for v in hyper.values()]}),
                hide_index=True,
            )
    if card.get("notes"):
        st.caption("Notes: " + "; ".join(card["notes"]))
    with st.expander("Export (adapter, merged, GGUF, Ollama, lm-eval samples)"):
        st.caption(
            "Run in a terminal in the project folder: a merge loads the model, which a page "
            "never does. The merged export is checked by reloading it with transformers alone."
        )
        common.code_block("\n".join(export.export_commands(entry)))


def slices_tab(shown: pd.DataFrame) -> None:
    """Per-slice scores of one of the model's tasks, gaps and verdicts."""
    if shown.empty:
        st.info("This model has no test-split score on the chosen tasks.")
        return
    task = st.columns([2, 3])[0].selectbox("Task", list(shown["task"]), key="lb_slices_task")
    slices_view.score_section(shown[shown["task"] == task].iloc[0].to_dict())


def detail_view(
    path: str, latest: int, table: pd.DataFrame, task_names: list[str], names: dict[str, str]
) -> None:
    st.subheader("Model details")
    model_id = st.columns([2, 3])[0].selectbox(
        "Model",
        list(table["model_id"]),
        format_func=lambda mid: f"{names.get(mid, mid)} · {mid}",
        key="lb_detail_model",
    )
    if model_id is None:
        return
    details = load_details(path, latest, model_id)
    shown = board_rows(details, task_names)
    repro, items, card, robustness = st.tabs(ALL_TABS, key="lb_detail_tab", on_change="rerun")
    with repro:
        if repro.open is not False:
            reproducibility_tab(details, shown)
    with items:
        if items.open is not False:
            items_tab(path, shown)
    with card:
        if card.open is not False:
            training_tab(model_id, names)
    with robustness:
        if robustness.open is not False:
            slices_tab(shown)


# ---------------------------------------------------------------- the page


def main() -> None:
    st.title("Leaderboard")
    st.caption(
        "Scores are each task's primary metric on its test split, with a 95% bootstrap "
        "confidence interval; the overall score is their mean. Models whose overall "
        "intervals overlap share a rank."
    )
    path = common.db_path()
    db = common.get_db()
    latest = lb.latest_score_id(db)
    try:
        full = load_table(path, latest, ())
    except registry.RegistryError as exc:
        st.error(f"The model registry could not be read: {exc}")
        return
    if full.empty:
        empty_state()
        return
    info = task_info(str(paths.user_tasks_dir()))
    chosen = filters(full, lb.task_columns(full))
    table = load_table(path, latest, tuple(sorted(chosen["tasks"]))) if chosen["tasks"] else full
    task_names = lb.task_columns(table)
    table = apply_filters(table, chosen)
    if table.empty:
        st.info("No model matches these filters: widen the size range or clear a filter.")
        return
    bounded = bool(table["overall"].between(0, 1).all())
    names = dict(zip(full["model_id"], full["display_name"], strict=True))
    show_board(display_frame(table, task_names, names), task_names, info, bounded)
    trained = table.dropna(subset=["trained_on_task"])
    trained = trained[trained["trained_on_task"].isin(task_names)]
    if not trained.empty:
        marks = ", ".join(
            f"{name} on {task}"
            for name, task in zip(trained["display_name"], trained["trained_on_task"], strict=True)
        )
        if len(trained) > 3:
            marks = f"{len(trained)} models"
        st.caption(
            f"{TRAINED_MARK} fine-tuned on that task's training split ({marks}): its test "
            "score there is in-domain, not a like-for-like comparison with the others."
        )
    if len(table) > CHART_MAX_MODELS:
        st.caption(f"Chart: the top {CHART_MAX_MODELS} of {len(table)} models.")
    charts.show(overall_chart(table, bounded))
    detail_view(path, latest, table, task_names, names)


main()
