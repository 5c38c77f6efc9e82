"""Compare: a fine-tuned model against its base model, on the same test items.

Thin page: everything shown comes from one ``core.analysis.comparison.ComparisonView`` (paired
deltas, win/loss/tie, flips, training facts, curve), the same view the downloadable HTML
report (``core.analysis.report``) renders; this file picks the two models and lays it out.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import format as fmt
from core.analysis import comparison as cmp
from core.analysis import gains, paired, report, svg, utilisation
from core.analysis import leaderboard as lb
from core.models import registry
from core.training.config import method_label
from streamlit_app import charts, common, slices_view

BASE_COLOR, TUNED_COLOR = fmt.PALETTE["base"], fmt.PALETTE["tuned"]
VERDICT_MARKS = {"better": "▲ better", "worse": "▼ worse", "no clear change": "≈ no clear change"}
FLIP_ROWS = 200
SECTIONS = ("Every metric", "Item by item", "Training", "Reproducibility")  # lazy tabs


# ---------------------------------------------------------------- cached reads through core


@st.cache_data(ttl=5, show_spinner=False, max_entries=16)
def load_choices(path: str, latest_id: int) -> tuple[dict[str, list[str]], dict | None, dict]:
    """(base -> fine-tuned ids, the latest stored pair, id -> display name)."""
    db = common.open_db(path)
    return cmp.finetuned_by_base(db), cmp.latest_pair(db), registry.display_names(db)


@st.cache_data(ttl=5, show_spinner=False, max_entries=16)
def load_references(path: str, latest_id: int, tuned_id: str) -> list[str]:
    return cmp.reference_models(common.open_db(path), tuned_id)


@st.cache_data(ttl=30, show_spinner=False, max_entries=16)
def load_view(path: str, latest_id: int, base_id: str, tuned_id: str) -> cmp.ComparisonView:
    """The comparison of the pair; ``latest_id`` (the newest score) only keys the cache."""
    return cmp.build_view(common.open_db(path), base_id, tuned_id)


# ---------------------------------------------------------------- pieces of the page


def empty_state() -> None:
    st.info(
        "**No fine-tuned models yet.** This page puts a fine-tuned model next to the base "
        "model it came from, on exactly the same test items. To make one, open **Run a model** "
        "(model selection), pick a model and choose **Also Fine-tune and Compare**, or run "
        "this in a terminal in the project folder, then come back here.",
        icon=":material/compare_arrows:",
    )
    common.code_block(
        "# LoRA on the embedded SmolLM2 (a few minutes on a laptop CPU)\n"
        "finboard finetune-compare --model smollm2-135m-instruct --task fin_sentiment "
        "--method lora --preset quick"
    )
    st.caption(f"Store: `{common.db_path()}`")


def tuned_label(model_id: str, base_id: str, options: list[str], names: dict[str, str]) -> str:
    """The display name; with the rest of the id when two options share a name."""
    name = names.get(model_id, model_id)
    if sum(names.get(o, o) == name for o in options) > 1:
        return f"{name} · {model_id.removeprefix(base_id + '-')}"
    return name


def pickers(by_base: dict[str, list[str]], latest: dict | None, names: dict[str, str]) -> tuple:
    """The base and fine-tuned selectboxes (defaults: the newest stored pair)."""
    bases = list(by_base)
    if st.session_state.get("cmp_base") not in bases:  # first visit, or that base is gone
        newest = latest["base_model_id"] if latest else None
        st.session_state["cmp_base"] = newest if newest in bases else bases[0]
    base_col, tuned_col, button_col = st.columns([1.8, 3, 1.7], vertical_alignment="bottom")
    base_id = base_col.selectbox(
        "Base model",
        bases,
        format_func=lambda mid: names.get(mid, mid),
        key="cmp_base",
        help="Base models that have at least one fine-tuned version.",
    )
    tuned_ids = by_base.get(base_id, [])
    wanted = latest["finetuned_model_id"] if latest else None
    if st.session_state.get("cmp_tuned") not in tuned_ids:
        st.session_state["cmp_tuned"] = wanted if wanted in tuned_ids else tuned_ids[0]
    tuned_id = tuned_col.selectbox(
        "Fine-tuned model",
        tuned_ids,
        format_func=lambda mid: tuned_label(mid, base_id, tuned_ids, names),
        key="cmp_tuned",
        help="Fine-tuned versions of the chosen base model, newest first.",
    )
    return base_id, tuned_id, button_col


def reference_picker(references: list[str], names: dict[str, str]) -> str:
    """What the fine-tuned model is compared with: its base (an encoder: the majority class),
    or a fine-tune of the other kind on the same task (encoder vs LLM)."""
    if st.session_state.get("cmp_against") not in references:
        st.session_state["cmp_against"] = references[0]
    return st.selectbox(
        "Compared with",
        references,
        format_func=lambda mid: names.get(mid, mid),
        key="cmp_against",
        help="Its base model (for an encoder: the majority-class baseline, as an untrained "
        "head is no base model), or a fine-tune of the other kind (encoder / LLM) on the same "
        "task, scored on the same test items.",
    )


def download(button_col, view: cmp.ComparisonView) -> None:
    button_col.download_button(
        "Download report",
        data=lambda: report.render_html_report(view),  # built on click, not before the page
        file_name=report.report_filename(view.tuned.id),
        mime="text/html",
        icon=":material/download:",
        key="cmp_download",
        help="One HTML file with everything on this page; opens offline, prints cleanly.",
    )


def headline(view: cmp.ComparisonView) -> None:
    head, facts = view.headline, view.facts
    if head is None:
        return
    colour = {"better": "green", "worse": "red"}.get(head.verdict)
    words = cmp.headline_sentence(head)
    st.markdown(
        f"The fine-tuned model :{colour}[{words}]" if colour else f"The fine-tuned model {words}"
    )
    unit = f" {head.unit}" if head.unit else ""
    arrow = {"better": "▲ ", "worse": "▼ "}.get(head.verdict, "")
    figures = facts.get("resources") or {}
    paused = figures.get("paused_s")
    rate = facts.get("tokens_per_s")
    row = [
        common.Tile(
            f"{paired.metric_label(head.metric)} · {head.task or 'all tasks'}",
            f"{head.tuned:.3f}",
            f"{arrow}{fmt.fmt_signed(head.points, 1)}{unit} vs base {head.base:.3f}",
            colour,
            help="Fine-tuned score on the task it was trained on; the change is against the "
            "base model on the same test items.",
        ),
        common.Tile(
            "Training time",
            fmt.fmt_duration(facts.get("train_seconds")),
            f"paused {utilisation.figure_text('paused_s', paused)} by the guard"
            if paused
            else None,
            help=f"Optimizer time on {facts.get('device') or 'an unknown device'}"
            f" ({facts.get('steps') or '?'} steps)"
            + (f"; the resource guard held it for {paused:.0f} s." if paused else "."),
        ),
        energy_tile(facts.get("energy_kwh"), figures),
        gpu_utilisation_tile(figures),
        common.Tile("Tokens/s", f"{rate:,.0f}" if rate else fmt.MISSING, help="While training."),
        common.Tile(
            "Peak memory",
            fmt.fmt_mb(facts.get("peak_memory_mb")),
            help="Peak GPU memory on CUDA, else peak process RAM.",
        ),
    ]
    common.tiles([t for t in row if t is not None], min_width_rem=10)  # wraps where short


def energy_tile(energy: float | None, figures: dict) -> common.Tile:
    """The training job's energy; the GPUs' mean and peak power and top temperature beneath."""
    text = utilisation.figure_text
    power = figures.get("power_mean_w")
    if power is not None:
        below = (
            f"mean {text('power_mean_w', power)}, peak {text('power_peak_w', figures.get('power_peak_w'))}, "
            f"{text('temp_peak_c', figures.get('temp_peak_c'))}"
        )
    else:
        below = None if energy is not None else "no NVIDIA GPU"
    return common.Tile(
        "Energy",
        fmt.fmt_energy(energy),
        below,
        help="GPU energy of the training job, integrated from NVML power samples; beneath it "
        "the GPUs' mean and peak power (summed over GPUs) and the hottest reading."
        if energy is not None or power is not None
        else "Not measured (no NVIDIA GPU): energy is integrated from NVML power samples.",
    )


def gpu_utilisation_tile(figures: dict) -> common.Tile | None:
    """GPU utilisation while training; no tile where no GPU was measured (the energy tile says so)."""
    util = figures.get("gpu_util_mean")
    if util is None:
        return None
    text = utilisation.figure_text
    share = figures.get("gpu_util_above_80_share")
    return common.Tile(
        "GPU utilisation",
        text("gpu_util_mean", util),
        f"{text('gpu_util_above_80_share', share)} of the time above 80%"
        if share is not None
        else None,
        help=f"While training: {utilisation.figures_line(figures)}.",
    )


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    tasks = table["task"].nunique()
    return pd.DataFrame(
        {
            "Metric": [
                f"{paired.metric_label(m)} {'↑' if up else '↓'}"
                for m, up in zip(table["metric"], table["higher_is_better"], strict=True)
            ],
            "Task": [
                f"all {tasks} tasks" if m == "overall" else t
                for m, t in zip(table["metric"], table["task"], strict=True)
            ],
            "Base": [fmt.fmt_score(v) for v in table["base"]],
            "Fine-tuned": [fmt.fmt_score(v) for v in table["tuned"]],
            "Improvement": [fmt.fmt_signed(v) for v in table["improvement"]],
            "95% CI of the difference": [fmt.fmt_interval(c) for c in table["ci"]],
            "Verdict": [VERDICT_MARKS.get(v, v) for v in table["verdict"]],
        }
    )


def verdict_color(value: str) -> str:
    if value.startswith("▲"):
        return f"color: {fmt.PALETTE['good']}"
    return (
        f"color: {fmt.PALETTE['bad']}"
        if value.startswith("▼")
        else f"color: {fmt.PALETTE['neutral']}"
    )


COLUMN_HELP = {
    "Metric": "↑: higher is better; ↓: lower is better.",
    "Improvement": "Fine-tuned minus base, sign flipped where lower is better: positive "
    "always means the fine-tuned model is better.",
    "95% CI of the difference": "Paired bootstrap over the same test items (1,000 resamples).",
    "Verdict": "better / worse: the interval excludes zero.",
}


def comparison_section(table: pd.DataFrame) -> None:
    common.static_table(
        display_table(table),
        tooltips=COLUMN_HELP,
        cell_style=lambda column, text: verdict_color(text) if column == "Verdict" else None,
    )
    overall = (
        " The overall row is the mean of each task's primary metric."
        if (table["metric"] == "overall").any()
        else ""
    )
    st.caption(
        "Both models answered exactly the same test items (equal split fingerprints), so the "
        "interval of each difference is a paired bootstrap: usually narrower than the two scores' "
        "own intervals suggest." + overall
    )


def gains_section(view: cmp.ComparisonView) -> None:
    """Every task and Overall in points and percent, with the gain per hour and per kWh."""
    facts = view.facts
    summary = gains.summary_from_table(
        view.table, facts.get("train_seconds"), facts.get("energy_wh")
    )
    st.subheader("Gain per task")
    rows = gains.gain_table_rows(summary)
    common.static_table(pd.DataFrame(rows, columns=gains.GAIN_HEADERS))
    st.caption(gains.resource_line(summary))


def bars_chart(table: pd.DataFrame) -> str:
    """Grouped bars: each task's primary metric (and overall), base vs fine-tuned, with CIs."""
    primary = table[table["primary"]]
    labels = [
        "Overall" if m == "overall" else t for m, t in zip(primary["metric"], primary["task"])
    ]
    bounded = primary[["base", "tuned"]].stack().between(0, 1).all()
    metrics = sorted(set(primary.loc[primary["metric"] != "overall", "metric"]))
    return svg.svg_grouped_bars(
        labels,
        [
            ("Base", BASE_COLOR, list(primary["base"]), list(primary["base_ci"])),
            ("Fine-tuned", TUNED_COLOR, list(primary["tuned"]), list(primary["tuned_ci"])),
        ],
        paired.metric_label(metrics[0]).lower() if len(metrics) == 1 else "primary metric",
        1.0 if bounded else None,
    )


def differences_chart(table: pd.DataFrame) -> str | None:
    """Each improvement (in points) with its paired 95% CI; zero marked."""
    rows = table[table["ci"].notna() & table["base"].between(0, 1) & table["tuned"].between(0, 1)]
    if rows.empty:
        return None
    colors = {"better": fmt.PALETTE["good"], "worse": fmt.PALETTE["bad"]}
    dots = [
        (
            "Overall" if m == "overall" else f"{paired.metric_label(m)} · {task}",
            100 * improvement,
            [100 * ci[0], 100 * ci[1]],
            colors.get(verdict, fmt.PALETTE["neutral"]),
        )
        for m, task, improvement, ci, verdict in zip(
            rows["metric"], rows["task"], rows["improvement"], rows["ci"], rows["verdict"]
        )
    ]
    return svg.svg_dots(dots, "improvement in points (> 0: better), paired 95% CI")


def flips_table(part: pd.DataFrame) -> None:
    if part.empty:
        st.caption("None.")
        return
    view = pd.DataFrame(
        {
            "#": part["position"] + 1,
            "Prompt": [cmp.prompt_snippet(p, 240) for p in part["prompt"]],
            "Gold": part["gold"],
            "Base answer": part["base_answer"].fillna("(no answer)"),
            "Fine-tuned answer": part["tuned_answer"].fillna("(no answer)"),
        }
    )
    if len(view) > FLIP_ROWS:
        st.caption(f"The first {FLIP_ROWS} of {len(view)} items.")
    st.dataframe(
        view.head(FLIP_ROWS),
        hide_index=True,
        column_config={
            "#": st.column_config.NumberColumn("#", width=45),
            "Prompt": st.column_config.TextColumn(
                "Item", width="large", help="The item's part of the prompt (hover to read it all)."
            ),
            "Gold": st.column_config.TextColumn("Gold", width="small"),
            "Base answer": st.column_config.TextColumn("Base answer", width="small"),
            "Fine-tuned answer": st.column_config.TextColumn("Fine-tuned answer", width="small"),
        },
    )


def items_section(view: cmp.ComparisonView) -> None:
    tasks = [d.task for d in view.tasks]
    trained = view.tuned.trained_on_task
    default = trained if trained in tasks else tasks[0]
    if st.session_state.get("cmp_task") not in tasks:
        st.session_state["cmp_task"] = default
    task = (
        st.segmented_control("Task", tasks, key="cmp_task", required=True)
        if len(tasks) > 1
        else tasks[0]
    )
    detail = next(d for d in view.tasks if d.task == task)
    tally = detail.tally
    common.tiles(
        [
            common.Tile("Wins", str(tally["win"]), help="Right now, wrong before fine-tuning."),
            common.Tile("Losses", str(tally["loss"]), help="Wrong now, right before fine-tuning."),
            common.Tile("Ties", str(tally["tie"]), help="Same verdict for both models."),
            common.Tile("Items", str(tally["n"]), help="Test items both models answered."),
        ]
    )
    st.caption(
        f"Ties: {tally['both_right']} both right, {tally['both_wrong']} both wrong · "
        f"scores #{detail.base_score['id']} (base) and #{detail.tuned_score['id']} (fine-tuned)."
    )
    if detail.base_confusion and detail.tuned_confusion:
        left, right = st.columns(2)
        for column, matrix, name, color in (
            (left, detail.base_confusion, "Base: confusion matrix", BASE_COLOR),
            (right, detail.tuned_confusion, "Fine-tuned: confusion matrix", TUNED_COLOR),
        ):
            charts.show(svg.svg_heatmap(matrix["labels"], matrix["matrix"], name, color), column)
        st.caption("Rows: gold label; columns: the model's answer; shade: share of the gold row.")
    slices_view.comparison_section(detail)
    flips = detail.flips
    wins, losses = flips[flips["flip"] == "win"], flips[flips["flip"] == "loss"]
    now_right, now_wrong = st.tabs(
        [f"Now right ({len(wins)})", f"Now wrong ({len(losses)})"],
        key="cmp_flip_tab",
        on_change="rerun",  # only the open tab's table is built and drawn
    )
    with now_right:
        if now_right.open is not False:
            st.caption("Items the fine-tuned model gets right and the base model got wrong.")
            flips_table(wins)
    with now_wrong:
        if now_wrong.open is not False:
            st.caption("Items the fine-tuned model gets wrong and the base model got right.")
            flips_table(losses)


def training_section(view: cmp.ComparisonView) -> None:
    facts = view.facts
    hyper = facts.get("hyperparameters") or {}
    trainable, total = facts.get("trainable_params"), facts.get("total_params")
    share = f" ({fmt.fmt_share(trainable, total)} of the weights)" if trainable and total else ""
    st.markdown(
        f"{method_label(facts.get('method'))} on **{facts.get('trained_on_task')}** · "
        f"{facts.get('train_examples') or fmt.MISSING} training examples · "
        f"{facts.get('steps') or fmt.MISSING} steps · "
        f"{fmt.fmt_params(trainable)} trainable parameters{share} · "
        f"learning rate {hyper.get('learning_rate', fmt.MISSING)} · "
        f"final train / validation loss {fmt.fmt_score(facts.get('final_train_loss'))} / "
        f"{fmt.fmt_score(facts.get('final_val_loss'))}"
    )
    if view.curve:
        charts.show(charts.loss_curve(view.curve))
    else:
        st.caption(
            "No training curve: this model was trained outside the job queue, so no per-step "
            "progress was stored."
        )


def reproducibility(view: cmp.ComparisonView) -> None:
    entry = view.tuned
    st.markdown(f"Base `{view.base_id}` · fine-tuned `{entry.id}` · adapter `{entry.adapter_path}`")
    if view.finetune_command:
        st.caption("Train the same adapter again")
        common.code_block(view.finetune_command)
    for detail in view.tasks:
        base, tuned = detail.base_score, detail.tuned_score
        st.markdown(
            f"**{detail.task}** · {base['n_items']} {base['split']} items · split "
            f"fingerprint `{base['split_fingerprint']}`  \nweights: base "
            f"`{fmt.short_hash(base['weights_hash'], 16)}`, fine-tuned "
            f"`{fmt.short_hash(tuned['weights_hash'], 16)}`"
        )
        common.code_block(f"{base['command']}\n{tuned['command']}")


def no_shared_scores(view: cmp.ComparisonView) -> None:
    task = view.tuned.trained_on_task or "fin_sentiment"
    st.warning(
        "These two models have no scores on the same test items yet, so there is nothing to "
        "compare. Evaluate both on the same task (same split, same --limit or none), then "
        "reload this page.",
        icon=":material/rule:",
    )
    common.code_block(
        f"finboard eval --model {view.base_id} --task {task}\n"
        f"finboard eval --model {view.tuned.id} --task {task}"
    )


def details(view: cmp.ComparisonView) -> None:
    """The long sections as tabs; only the open one is built and drawn (a lighter first load)."""
    tabs = st.tabs(list(SECTIONS), key="cmp_section", on_change="rerun")
    drawers = (
        lambda: comparison_section(view.table),
        lambda: items_section(view),
        lambda: training_section(view),
        lambda: reproducibility(view),
    )
    for tab, draw in zip(tabs, drawers):
        with tab:
            if tab.open is not False:
                draw()


# ---------------------------------------------------------------- the page


def main() -> None:
    st.title("Base vs fine-tuned")
    st.caption(
        "A fine-tuned model next to the base model it came from, measured on exactly the same "
        "test items: every difference with a paired 95% confidence interval."
    )
    path = common.db_path()
    latest_id = lb.latest_score_id(common.get_db())
    try:
        by_base, latest, names = load_choices(path, latest_id)
        if not by_base:
            empty_state()
            return
        base_id, tuned_id, button_col = pickers(by_base, latest, names)
        references = load_references(path, latest_id, tuned_id)
        if len(references) > 1 or references[0] != base_id:
            base_id = reference_picker(references, names)
        view = load_view(path, latest_id, base_id, tuned_id)
    except registry.RegistryError as exc:
        st.error(f"The model registry could not be read: {exc}")
        return
    if view.empty:
        no_shared_scores(view)
        return
    download(button_col, view)
    headline(view)
    gains_section(view)
    left, right = st.columns([4, 3])
    charts.show(bars_chart(view.table), left)
    differences = differences_chart(view.table)
    if differences is not None:
        charts.show(differences, right)
    details(view)


main()
