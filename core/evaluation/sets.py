"""Set extraction: parse a model's list of items into a set of vocabulary terms, and score it.

    >>> vocab = ["fees", "mobile app", "customer service"]
    >>> parse_set("Fees; the App and customer support.", vocab, {"app": "mobile app",
    ...           "customer support": "customer service"})
    ['fees', 'mobile app', 'customer service']
    >>> parse_set("none", vocab, {}), parse_set("I like turtles", vocab, {})
    ([], None)

**The parser**, applied in order:

1. Only the first line that is not blank counts, unless the output is a list (lines starting
   with ``-``, ``*``, ``•`` or ``1.``), when every list line counts. A leading label such as
   ``Features:`` or ``Answer:`` is dropped.
2. Lower case; the text is cut into chunks at commas, semicolons, slashes, ``&``, the word
   ``and``, and line breaks.
3. Each chunk loses surrounding punctuation and quotes and a leading article (the, a, an).
4. A chunk that *is* a vocabulary term or a synonym (``synonyms``: written form -> term)
   gives that term; otherwise every term or synonym found inside the chunk as whole words
   counts, longest first, and a word used by a longer match is not matched again (so "hidden
   fees" is *hidden charges*, not also *fees*).
5. ``none``, ``nothing``, ``no features`` (alone) mean the empty set.
6. Nothing recognised in a non-empty answer: unparseable (None). Unknown chunks beside known
   ones are ignored (they cost recall nowhere and precision nowhere: the vocabulary is closed).

The result is in vocabulary order, without repeats.

**Scores** over items, against the gold sets: micro precision / recall / F1 pool the true
positives, false positives and false negatives of every item; macro P / R / F1 average the
per-term figures over the terms that occur in gold or predictions; an unparseable answer counts
as the empty set (its gold terms are missed). Exact-set accuracy and the unparseable rate too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.evaluation import metrics as m

EMPTY_ANSWERS = ("none", "nothing", "no features", "n/a")
_LABEL = re.compile(r"^\s*(?:features?|answer|mentioned|topics?)\s*(?:mentioned)?\s*:\s*", re.I)
_LIST_LINE = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_SPLIT = re.compile(r"[,;/&\n]|\band\b")
_EDGES = re.compile(r"^[\s\"'`.:!?()\[\]{}-]+|[\s\"'`.:!?()\[\]{}-]+$")
_ARTICLE = re.compile(r"^(?:the|a|an)\s+")


def _answer_lines(text: str) -> list[str]:
    """The list lines of a list answer, else the first non-blank line (rule 1)."""
    lines = [line for line in text.splitlines() if line.strip()]
    listed = [_LIST_LINE.sub("", line) for line in lines if _LIST_LINE.match(line)]
    return listed or lines[:1]


def _chunks(text: str) -> list[str]:
    chunks = []
    for line in _answer_lines(text):
        for part in _SPLIT.split(_LABEL.sub("", line).lower()):
            chunk = _ARTICLE.sub("", _EDGES.sub("", part))
            if chunk:
                chunks.append(chunk)
    return chunks


def _forms(vocabulary: Sequence[str], synonyms: dict[str, str]) -> list[tuple[str, str]]:
    """(written form, term), longest form first."""
    forms = {term.lower(): term for term in vocabulary}
    forms.update({written.lower(): term for written, term in synonyms.items()})
    return sorted(forms.items(), key=lambda pair: -len(pair[0]))


def find_terms(text: str, vocabulary: Sequence[str], synonyms: dict[str, str]) -> list[str]:
    """Every term whose name or a synonym occurs in ``text`` as whole words (rule 4 inside).

    >>> find_terms("Hidden fees everywhere, but the fees are low", ["fees", "hidden charges"],
    ...            {"hidden fees": "hidden charges"})
    ['fees', 'hidden charges']
    """
    rest = text.lower()
    found = set()
    for written, term in _forms(vocabulary, synonyms):
        pattern = re.compile(rf"\b{re.escape(written)}\b")
        if pattern.search(rest):
            found.add(term)
            rest = pattern.sub(" ", rest)
    return [term for term in vocabulary if term in found]


def parse_set(
    text: str | None, vocabulary: Sequence[str], synonyms: dict[str, str]
) -> list[str] | None:
    """The vocabulary terms a model's answer lists (see the module doc), or None."""
    chunks = _chunks(text or "")
    if not chunks:
        return None
    if len(chunks) == 1 and chunks[0] in EMPTY_ANSWERS:
        return []
    exact = {written: term for written, term in _forms(vocabulary, synonyms)}
    found = set()
    for chunk in chunks:
        if chunk in exact:
            found.add(exact[chunk])
        else:
            found.update(find_terms(chunk, vocabulary, synonyms))
    if not found:
        return None
    return [term for term in vocabulary if term in found]


def split_terms(answer: str | None) -> list[str]:
    """A stored canonical answer (``"fees, mobile app"``, ``"none"``) back into its terms."""
    if answer is None or answer.strip().lower() in ("", "none"):
        return []
    return [term.strip() for term in answer.split(",") if term.strip()]


def _counts(
    golds: Sequence[Sequence[str]], preds: Sequence[Sequence[str] | None], vocabulary: Sequence[str]
) -> np.ndarray:
    """(items, terms, 3) array of true positives, false positives, false negatives."""
    index = {term: i for i, term in enumerate(vocabulary)}
    counts = np.zeros((len(golds), len(vocabulary), 3), dtype=int)
    for row, (gold, pred) in enumerate(zip(golds, preds)):
        gold_set, pred_set = set(gold), set(pred or [])
        for term in gold_set & pred_set:
            counts[row, index[term], 0] = 1
        for term in pred_set - gold_set:
            counts[row, index[term], 1] = 1
        for term in gold_set - pred_set:
            counts[row, index[term], 2] = 1
    return counts


def _prf(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> tuple[Any, Any, Any]:
    tp, fp, fn = (np.asarray(x, dtype=float) for x in (tp, fp, fn))
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=(tp + fn) > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(tp), where=total > 0)
    return precision, recall, f1


def _micro(totals: np.ndarray) -> tuple[Any, Any, Any]:
    """Micro P, R, F1 of (..., terms, 3) totals: pooled over the terms."""
    pooled = totals.sum(axis=-2)
    return _prf(pooled[..., 0], pooled[..., 1], pooled[..., 2])


def _macro(totals: np.ndarray) -> tuple[Any, Any, Any]:
    """Macro P, R, F1 of (..., terms, 3) totals: the mean over the terms present."""
    present = totals.sum(axis=-1) > 0
    figures = _prf(totals[..., 0], totals[..., 1], totals[..., 2])
    used = present.sum(axis=-1)
    return tuple(
        np.divide((x * present).sum(axis=-1), used, out=np.zeros(used.shape), where=used > 0)
        for x in figures
    )


def micro_prf(counts: np.ndarray) -> tuple[float, float, float]:
    """Micro precision, recall, F1 of a (items, terms, 3) count array."""
    return tuple(float(x) for x in _micro(counts.sum(axis=0)))  # type: ignore[return-value]


def macro_prf(counts: np.ndarray) -> tuple[float, float, float]:
    """Mean per-term precision, recall, F1 over the terms present in gold or predictions."""
    return tuple(float(x) for x in _macro(counts.sum(axis=0)))  # type: ignore[return-value]


SET_STATISTICS = {  # name -> (micro or macro, index of P / R / F1)
    "micro_precision": (_micro, 0),
    "micro_recall": (_micro, 1),
    "micro_f1": (_micro, 2),
    "macro_precision": (_macro, 0),
    "macro_recall": (_macro, 1),
    "macro_f1": (_macro, 2),
}


def set_metrics(
    golds: Sequence[Sequence[str]],
    preds: Sequence[Sequence[str] | None],
    vocabulary: Sequence[str],
    seed: int = 0,
) -> dict[str, Any]:
    """Micro / macro P, R, F1, exact-set accuracy, unparseable rate (all with 95% CIs) and the
    per-term figures (``per_term``).

    >>> report = set_metrics([["a", "b"], ["a"]], [["a"], ["a", "c"]], ["a", "b", "c"])
    >>> round(report["micro_f1"]["value"], 3), report["accuracy"]["value"]
    (0.667, 0.0)
    """
    counts = _counts(golds, preds, vocabulary)
    totals = counts.sum(axis=0)
    # every resample's totals at once: (resamples, terms, 3)
    resampled = counts[m.resample_indices(len(golds), seed)].sum(axis=1) if len(golds) else None
    report: dict[str, Any] = {}
    for name, (average, which) in SET_STATISTICS.items():
        ci = [float("nan"), float("nan")]
        if resampled is not None:
            ci = m.percentile_interval(average(resampled)[which])
        report[name] = {"value": float(average(totals)[which]), "ci": ci}
    exact = [float(p is not None and set(p) == set(g)) for g, p in zip(golds, preds)]
    report["accuracy"] = m.mean_with_ci(exact, seed)
    report["unparseable_rate"] = m.mean_with_ci([float(p is None) for p in preds], seed)
    precision, recall, f1 = _prf(*(counts[:, :, k].sum(axis=0) for k in range(3)))
    report["per_term"] = {
        term: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(counts[:, i, 0].sum() + counts[:, i, 2].sum()),
        }
        for i, term in enumerate(vocabulary)
    }
    return report
