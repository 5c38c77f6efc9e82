"""Datasets: turn a user's CSV / JSONL file, or a seeded synthetic corpus, into a task.

Thin page: staging (``core.data.uploads``), previews and descriptions (``core.tasks.inspect``),
synthetic corpora (``core.data.corpora``) and task files (``core.tasks.authoring``) come from
``core``; this file only lays them out. An uploaded file is staged on disk and its
path kept in ``st.session_state["ds_staged_path"]``, so everything after the upload (mapping,
validation report, preview, saving) works from that path.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from core import format as fmt
from core import paths
from core.analysis import svg
from core.data import augment, corpora, uploads
from core.data.importer import ColumnMapping, DatasetImportError, ImportReport, list_columns
from core.data.items import SPLIT_NAMES
from core.tasks import authoring, inspect
from core.tasks.spec import TaskSpecError, get_task, list_tasks
from streamlit_app import charts, data_views

TABS = ["Upload your data", "Synthetic finance corpus", "Split files and records"]
KINDS = {
    "choice": "Choice: a text and one label from a fixed list (e.g. sentiment).",
    "numeric": "Numeric: a prompt and a number to extract or compute (e.g. EPS).",
    "text": "Text: a prompt and a short free-text answer, scored by exact match.",
}
ROLE_HELP = {
    "text": "The column holding the text to classify.",
    "label": "The column holding each row's label.",
    "prompt": "The column holding the question or snippet.",
    "answer": "The column holding the expected answer.",
}
NO_ID = "(row number)"
SPLIT_COLORS = {"train": "#4C78A8", "validation": "#F58518", "test": "#54A24B"}
PREVIEW_PER_SPLIT = 3
ANSWER_UNITS = {"eps_extraction": "EPS ($)", "revenue_analysis": "revenue growth (%)"}
USER_ERRORS = (DatasetImportError, TaskSpecError, ValueError, OSError)
SAVED_NOTE = "It is now available in evaluation and fine-tuning, like the built-in tasks."
TABLE_ERRORS = 50  # up to this many problems are listed in a table that wraps long messages
PROBLEM_STYLE = "background-color: rgba(207, 34, 46, 0.12)"


# ---------------------------------------------------------------- upload: staging


def stage_upload() -> str | None:
    """Stage the uploaded file (once per upload) and return the staged path, if any."""
    upload = st.file_uploader(
        "Your dataset",
        type=["csv", "tsv", "jsonl"],
        key="ds_upload",
        help="CSV or TSV with a header row, or JSON Lines (one object a line), UTF-8 encoded. "
        "The file stays on this machine.",
    )
    state = st.session_state
    if upload is not None and state.get("ds_staged_from") != upload.file_id:
        try:
            path = uploads.save_upload(upload.name, upload.getvalue())
        except OSError as exc:
            st.error(f"Could not stage {upload.name}: {exc}")
            return None
        for key in [k for k in state if str(k).startswith(("ds_col_", "ds_report"))]:
            del state[key]
        state["ds_staged_path"] = str(path)
        state["ds_staged_from"] = upload.file_id
    elif upload is None and state.get("ds_staged_from"):  # the user removed the file
        for key in ("ds_staged_path", "ds_staged_from", "ds_report"):
            state.pop(key, None)
    path = state.get("ds_staged_path")
    return path if path and Path(path).is_file() else None


def mapping_inputs(path: Path, kind: str) -> tuple[ColumnMapping, list[str] | None] | None:
    """Column pickers (and the label list for choice tasks); None when the file has no columns."""
    try:
        columns = list_columns(path)
    except USER_ERRORS as exc:
        st.error(str(exc))
        return None
    if not columns:
        st.error(f"{path.name}: no columns found (is the file empty?)")
        return None
    guess = inspect.guess_mapping(columns, kind)
    input_role, answer_role = inspect.roles_for(kind)
    picks: dict[str, str | None] = {}
    first, second, third = st.columns(3)
    for col, role in ((first, input_role), (second, answer_role)):
        current = getattr(guess, role)
        picks[role] = col.selectbox(
            f"{role.capitalize()} column",
            columns,
            index=columns.index(current) if current in columns else 0,
            key=f"ds_col_{role}",
            help=ROLE_HELP[role],
        )
    id_options = [NO_ID, *columns]
    chosen_id = third.selectbox(
        "Id column (optional)",
        id_options,
        index=id_options.index(guess.id) if guess.id in id_options else 0,
        key="ds_col_id",
        help="Stable ids keep each row in the same split when the file grows; without one, "
        "rows are named by their line number.",
    )
    picks["id"] = None if chosen_id == NO_ID else chosen_id
    labels = None
    if kind == "choice":
        text = st.text_input(
            "Labels (comma-separated, optional)",
            key="ds_labels",
            placeholder="default: the labels found in the file",
            help="When given, every row's label must be one of these (case is ignored).",
        )
        labels = [label.strip() for label in text.split(",") if label.strip()] or None
    return ColumnMapping(**picks), labels


# ---------------------------------------------------------------- upload: the report


def run_validation(path: Path, kind: str, mapping: ColumnMapping, labels: list[str] | None) -> None:
    """Check every row and keep the report (with its charts' data) in the session."""
    with st.spinner(f"Checking every row of {path.name}…"):
        try:
            report = authoring.validate_file(path, kind, mapping, labels)
        except USER_ERRORS as exc:
            st.session_state.pop("ds_report", None)
            st.error(str(exc))
            return
        lengths = inspect.token_lengths(report.items) if report.ok else None
    st.session_state["ds_report"] = {
        "signature": signature(path, kind, mapping, labels),
        "report": report,
        "lengths": lengths,
    }


def signature(path: Path, kind: str, mapping: ColumnMapping, labels: list[str] | None) -> tuple:
    """What a validation report depends on: the file's state and the settings."""
    stat = path.stat()
    return (str(path), stat.st_mtime_ns, stat.st_size, kind, mapping, tuple(labels or ()))


def error_table(report: ImportReport) -> pd.DataFrame:
    """One row per problem: row (line number; blank for the whole file), field, message."""
    return pd.DataFrame(
        {
            "row": pd.array([e.row for e in report.errors], dtype="Int64"),
            "field": [e.field or "" for e in report.errors],
            "message": [e.message for e in report.errors],
        }
    )


def validation_report(
    path: Path, kind: str, mapping: ColumnMapping, labels: list[str] | None, state: dict
) -> None:
    """The outcome of Validate: a success box or the row-numbered errors, then the preview."""
    report: ImportReport = state["report"]
    if report.ok:
        counts = ""
        if report.label_counts:
            counts = " · labels: " + ", ".join(f"{k} {v}" for k, v in report.label_counts.items())
        st.success(
            f"**{report.file}** is valid: all {report.rows_read:,} rows can be used{counts}. "
            "Rows are split by id into about 70% train, 10% validation, 20% test.",
            icon=":material/check_circle:",
        )
    else:
        total = report.error_count
        st.error(
            f"**{total} problem{'' if total == 1 else 's'} in {report.file}.** Fix them in "
            "the file (or change the mapping above) and upload it again; nothing was saved.",
            icon=":material/error:",
        )
        errors = error_table(report)
        if len(errors) <= TABLE_ERRORS:  # a static table wraps long messages: nothing cut off
            st.table(errors.rename(columns={"row": "Row", "field": "Field", "message": "Problem"}))
        else:
            st.dataframe(
                errors,
                hide_index=True,
                column_config={
                    "row": st.column_config.NumberColumn(
                        "Row", width=60, help="Line number in the file (the header is row 1)."
                    ),
                    "field": st.column_config.TextColumn("Field", width=110),
                    "message": st.column_config.TextColumn("Problem", width="large"),
                },
                key="ds_errors",
            )
        if report.errors_omitted:
            st.caption(
                f"The first {len(report.errors)} problems are listed; "
                f"{report.errors_omitted} more are not."
            )
    odd = inspect.suspicious_labels(report.label_counts) if not labels else {}
    if odd:
        listed = "; ".join(f"**{label}** ({why})" for label, why in odd.items())
        st.warning(
            f"Labels to check: {listed}. With no label list every label in the file becomes a "
            "class: type the labels above to check every row against them.",
            icon=":material/spellcheck:",
        )
    preview_and_charts(path, kind, mapping, labels, state)


def preview_and_charts(
    path: Path, kind: str, mapping: ColumnMapping, labels: list[str] | None, state: dict
) -> None:
    report: ImportReport = state["report"]
    problems: dict[int, list[str]] = {}
    for error in report.errors:
        if error.row is not None:
            problems.setdefault(error.row, []).append(error.message)
    table = inspect.preview(path, mapping, kind, labels=labels, problems=problems)
    st.markdown("**Preview**" + ("" if report.ok else " (rows with a problem are marked)"))
    if table.empty:
        st.caption("No row to show with this mapping.")
    else:
        marked = table.style.apply(
            lambda row: [PROBLEM_STYLE if row["problem"] else ""] * len(row), axis=1
        )
        st.dataframe(
            marked,
            hide_index=True,
            key="ds_preview",
            column_config={
                "row": st.column_config.NumberColumn("Row", width=55),
                "problem": st.column_config.TextColumn("Problem", width="large"),
            },
        )
    if not report.ok:
        return
    left, right = st.columns(2)
    if kind == "choice":
        counts = inspect.label_balance(report.items, labels)
        chart("Label balance", balance_chart(counts), f"{sum(counts.values()):,} rows", left)
    lengths: inspect.TokenLengths = state["lengths"]
    place = right if kind == "choice" else left
    chart("Input length", length_chart(lengths), length_note(lengths), place)


# ---------------------------------------------------------------- charts


def chart(title: str, picture: str, note: str = "", container=None) -> None:
    place = container or st
    place.markdown(f"**{title}**" + (f"  \n:gray[{note}]" if note else ""))
    charts.show(picture, place)


def balance_chart(counts: dict[str, int]) -> str:
    rows = [(label, float(count), None, fmt.PALETTE["base"]) for label, count in counts.items()]
    return svg.svg_hbars(rows, "rows", value_format=",.0f", title="label balance")


def length_chart(lengths: inspect.TokenLengths) -> str:
    return svg.svg_histogram(
        [("rows", "#72B7B2", [float(v) for v in lengths.lengths])], lengths.unit, title="lengths"
    )


def length_note(lengths: inspect.TokenLengths) -> str:
    values = sorted(lengths.lengths)
    summary = f" · median {values[len(values) // 2]}, longest {values[-1]}" if values else ""
    return f"{lengths.counter}{summary}"


def split_balance_chart(balances: dict[str, dict[str, int]]) -> str:
    """Each label's share of each split."""
    labels = list(next(iter(balances.values()))) if balances else []
    series = []
    for split, counts in balances.items():
        total = sum(counts.values()) or 1
        shares = [100 * counts.get(label, 0) / total for label in labels]
        series.append((split, SPLIT_COLORS.get(split, "#999"), shares, [None] * len(labels)))
    return svg.svg_grouped_bars(labels, series, "% of the split")


def answer_histogram(answers: dict[str, list[float]], unit: str) -> str:
    """The distribution of numeric answers per split (as shares of the split)."""
    series = [(split, SPLIT_COLORS.get(split, "#999"), values) for split, values in answers.items()]
    return svg.svg_histogram(series, unit, bins=40, share=True, title="answers per split")


# ---------------------------------------------------------------- upload: saving


def save_form(
    path: Path, kind: str, mapping: ColumnMapping, labels: list[str] | None, valid: bool
) -> None:
    """Name, instruction and template, and "Save as task" (enabled once the file is valid)."""
    default_template = "{prompt}" if kind in ("numeric", "text") else "Text: {text}\nAnswer:"
    with st.form("ds_save_form", border=True):
        st.markdown("**Save as a task**")
        name = st.text_input(
            "Task name",
            key="ds_task_name",
            placeholder="e.g. my_headlines",
            help="2-49 lower-case letters, digits and underscores, starting with a letter.",
        )
        instruction = st.text_area(
            "Instruction",
            key="ds_instruction",
            height=80,
            placeholder="e.g. Classify the sentiment of the headline for investors.",
            help="Shown to the model before every item.",
        )
        template = st.text_area(
            "Prompt template",
            value=default_template,
            height=68,
            key=f"ds_template_{kind}",
            help=f"How each item is written; use {{{inspect.roles_for(kind)[0]}}} for its text.",
        )
        submitted = st.form_submit_button(
            "Save as task",
            type="primary",
            disabled=not valid,
            key="ds_save",
            help=None if valid else "Validate the file first: every row must be valid.",
        )
    if not valid:
        st.caption("**Save as task** is enabled once **Validate** finds no problem.")
    if not submitted:
        return
    try:
        spec = authoring.create_task_from_file(
            path,
            name=name.strip(),
            kind=kind,
            mapping=mapping,
            labels=labels,
            instruction=instruction.strip(),
            template=template,
        )
    except USER_ERRORS as exc:
        st.error(str(exc), icon=":material/error:")
        return
    st.success(f"Saved task **{spec.name}** ({spec.kind}). {SAVED_NOTE}", icon=":material/save:")


def upload_tab() -> None:
    st.caption(
        "Bring your own labelled examples: every row is checked, problems are listed by row "
        "number, and nothing is saved until the whole file is valid."
    )
    staged = stage_upload()
    if staged is None:
        return
    path = Path(staged)
    st.caption(f"Staged: `{path.name}` ({path.stat().st_size:,} bytes)")
    kind = st.radio(
        "Task kind",
        list(KINDS),
        key="ds_kind",
        horizontal=True,
        help="\n\n".join(KINDS.values()),
    )
    picked = mapping_inputs(path, kind)
    if picked is None:
        return
    mapping, labels = picked
    if st.button("Validate", type="primary", key="ds_validate", icon=":material/rule:"):
        run_validation(path, kind, mapping, labels)
    state = st.session_state.get("ds_report")
    current = state is not None and state["signature"] == signature(path, kind, mapping, labels)
    if state is not None and not current:
        st.info("The file or the settings changed: **Validate** again.", icon=":material/sync:")
    if current:
        validation_report(path, kind, mapping, labels, state)
    save_form(path, kind, mapping, labels, valid=current and state["report"].ok)


# ---------------------------------------------------------------- synthetic corpus


def synthetic_settings() -> dict[str, Any]:
    names = list(corpora.GENERATORS)
    left, seed_col = st.columns([3, 1])
    generator = left.selectbox("Generator", names, key="ds_syn_generator")
    left.caption(corpora.GENERATORS[generator])
    seed = seed_col.number_input(
        "Seed",
        min_value=0,
        max_value=2**31 - 1,
        value=1,
        step=1,
        key="ds_syn_seed",
        help="The same generator, seed and sizes always give the same items. "
        "The built-in tasks use seed 2024.",
    )
    sizes = {}
    defaults = {"train": 600, "validation": 100, "test": 200}
    for col, split in zip(st.columns(3), SPLIT_NAMES):
        sizes[split] = int(
            col.number_input(
                f"{split.capitalize()} items",
                min_value=0,
                max_value=corpora.MAX_SPLIT_SIZE,
                value=defaults[split],
                step=50,
                key=f"ds_syn_{split}",
            )
        )
    return {"generator": generator, "seed": int(seed), "sizes": sizes}


def generate(settings: dict[str, Any]) -> None:
    with st.spinner("Generating…"):
        start = time.perf_counter()
        try:
            corpus = corpora.generate_corpus(**settings)
        except ValueError as exc:
            st.error(str(exc))
            return
    seconds = time.perf_counter() - start
    st.session_state["ds_corpus"] = {**settings, "corpus": corpus, "seconds": seconds}


def corpus_view(generated: dict[str, Any]) -> None:
    corpus = generated["corpus"]
    generator = generated["generator"]
    counts = " · ".join(f"{len(items):,} {split}" for split, items in corpus.items())
    st.markdown(
        f"**{generator}**, seed {generated['seed']}: {counts} items "
        f":gray[(generated in {generated['seconds']:.2f} s)]"
    )
    rows = [
        {"split": split, "answer": item.answer, "text": item.fields["text"], "id": item.id}
        for split, items in corpus.items()
        for item in items[:PREVIEW_PER_SPLIT]
    ]
    st.dataframe(
        pd.DataFrame(rows, columns=["split", "answer", "text", "id"]),
        hide_index=True,
        key="ds_syn_preview",
        column_config={
            "split": st.column_config.TextColumn("Split", width=80),
            "answer": st.column_config.TextColumn("Answer", width=80),
            "text": st.column_config.TextColumn("Text", width="large"),
            "id": st.column_config.TextColumn("Id", width="small"),
        },
    )
    if generator == "fin_sentiment":
        labels = ["positive", "neutral", "negative"]
        balances = {s: inspect.label_balance(items, labels) for s, items in corpus.items()}
        chart("Label balance per split", split_balance_chart(balances))
    else:
        answers = {s: [float(i.answer) for i in items] for s, items in corpus.items() if items}
        chart("Answers per split", answer_histogram(answers, ANSWER_UNITS.get(generator, "answer")))
    if generator == "reviews":
        augmentation_view(corpus)
    stem = f"{generator}_seed{generated['seed']}"
    row = st.container(horizontal=True, vertical_alignment="center")
    row.markdown("Download JSON Lines:")
    for split, items in corpus.items():
        row.download_button(
            f"{split}.jsonl",
            data=corpora.corpus_jsonl(items),
            file_name=f"{stem}_{split}.jsonl",
            mime="application/jsonl",
            icon=":material/download:",
            key=f"ds_syn_download_{split}",
            on_click="ignore",
            disabled=not items,
        )


def augmentation_view(corpus: dict[str, list]) -> None:
    """What training on this corpus sees: each review once per view (core/data/augment.py)."""
    train = corpus.get("train") or next((items for items in corpus.values() if items), [])
    if not train:
        return
    spec = get_task("review_rating")
    chosen = augment.views(spec)
    st.markdown(
        f"**Augmentation:** each review becomes {len(chosen)} training examples "
        f"({', '.join(chosen)}): {len(train):,} train reviews → "
        f"**{len(train) * len(chosen):,} training examples**. One review, expanded:"
    )
    st.dataframe(
        pd.DataFrame(augment.expansion_rows(spec, train[0])),
        hide_index=True,
        key="ds_syn_augment",
        column_config={
            "view": st.column_config.TextColumn("View", width=110),
            "prompt": st.column_config.TextColumn("Prompt", width="large"),
            "answer": st.column_config.TextColumn("Answer", width="medium"),
        },
    )


def synthetic_save_form(generated: dict[str, Any]) -> None:
    suggestion = f"{generated['generator']}_seed{generated['seed']}"
    with st.form("ds_syn_save_form", border=True):
        st.markdown("**Save as a task**")
        st.caption(
            "Same prompt, labels and metrics as the built-in task for this generator, on "
            "these items. The JSONL files are kept too."
        )
        name = st.text_input(
            "Task name",
            key="ds_syn_name",
            placeholder=suggestion,
            help="2-49 lower-case letters, digits and underscores; empty: the suggestion.",
        )
        submitted = st.form_submit_button("Save as task", type="primary", key="ds_syn_save")
    if not submitted:
        return
    name = name.strip() or suggestion
    try:
        spec = authoring.create_synthetic_task(
            name, generated["generator"], generated["seed"], generated["sizes"]
        )
        folder = authoring.write_corpus_files(
            name, generated["corpus"], generator=generated["generator"], seed=generated["seed"]
        )
    except USER_ERRORS as exc:
        st.error(str(exc), icon=":material/error:")
        return
    st.success(
        f"Saved task **{spec.name}** ({spec.kind}). {SAVED_NOTE} JSONL copies: `{folder}`",
        icon=":material/save:",
    )


def synthetic_tab() -> None:
    st.caption(
        "Seeded finance items with exact answers: make a bigger or differently-seeded version "
        "of a built-in task for evaluation and fine-tuning."
    )
    settings = synthetic_settings()
    if st.button("Generate", type="primary", key="ds_syn_generate", icon=":material/casino:"):
        generate(settings)
    generated = st.session_state.get("ds_corpus")
    if generated is None:
        return
    if {k: generated[k] for k in settings} != settings:
        st.info(
            "The settings changed since this corpus was generated: **Generate** again to use "
            "them. Below: the last generated corpus.",
            icon=":material/sync:",
        )
    corpus_view(generated)
    synthetic_save_form(generated)


# ---------------------------------------------------------------- your tasks


@st.cache_data(ttl=60, show_spinner=False)
def load_user_tasks(folder: str, files: tuple[tuple[str, int], ...]) -> pd.DataFrame:
    """The user tasks table; ``files`` (name, mtime) only keys the cache."""
    return pd.DataFrame(inspect.user_task_rows())


def user_tasks_section() -> None:
    st.subheader("Your tasks")
    folder = paths.user_tasks_dir()
    files = (
        tuple((p.name, p.stat().st_mtime_ns) for p in sorted(folder.glob("*.yaml")))
        if folder.is_dir()
        else ()
    )
    table = load_user_tasks(str(folder), files)
    if table.empty:
        st.caption(
            "No tasks of your own yet: save one from an upload or a synthetic corpus. "
            f"Task files live in `{folder}`."
        )
        return
    if not table["problem"].notna().any():
        table = table.drop(columns="problem")
    table["fingerprint"] = [fmt.short_hash(f) if f else None for f in table["fingerprint"]]
    first = ["name", "kind", *SPLIT_NAMES, "fingerprint"]
    table = table[first + [c for c in table.columns if c not in first]]
    st.dataframe(
        table,
        hide_index=True,
        key="ds_user_tasks",
        column_config={
            "name": st.column_config.TextColumn("Task", width=150, pinned=True),
            "kind": st.column_config.TextColumn("Kind", width=70),
            "source": st.column_config.TextColumn("Source"),
            **{
                split: st.column_config.NumberColumn(split.capitalize(), width=80)
                for split in SPLIT_NAMES
            },
            "fingerprint": st.column_config.TextColumn(
                "Test fingerprint",
                width=110,
                help="The start of the SHA-256 of the test split's row ids; every score "
                "records the fingerprint of the items it was measured on.",
            ),
            "problem": st.column_config.TextColumn("Problem", width="large"),
        },
    )
    st.caption(f"Task files live in `{folder}`.")


# ---------------------------------------------------------------- the page


def main() -> None:
    st.title("Datasets")
    st.caption(
        "Make tasks from your own data or from the synthetic finance generator. Saved tasks "
        "appear in evaluation and fine-tuning next to the built-in ones; the data stays local."
    )
    upload, synthetic, split_files = st.tabs(TABS, key="ds_tab", on_change="rerun")
    with upload:
        if upload.open is not False:
            upload_tab()
    with synthetic:
        if synthetic.open is not False:
            synthetic_tab()
    with split_files:
        if split_files.open is not False:
            data_views.split_files_tab()
    user_tasks_section()
    data_views.task_quality_section(list_tasks())


main()
