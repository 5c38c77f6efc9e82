"""The small read-only tables pages draw as HTML (``common.static_table``)."""

from __future__ import annotations

from conftest import tables
from streamlit.testing.v1 import AppTest


def _page():
    import pandas as pd

    from streamlit_app import common

    frame = pd.DataFrame({"Task": ["a<b", "Overall"], "Verdict": ["▲ better", None]})
    common.static_table(
        frame,
        tooltips={"Verdict": 'the interval "excludes" zero'},
        cell_style=lambda column, text: "color: green" if text.startswith("▲") else None,
    )


def test_cells_are_escaped_tooltips_and_styles_kept():
    at = AppTest.from_function(_page).run()
    assert not at.exception
    markup = at.get("html")[0].proto.body
    assert "a&lt;b" in markup and "<b>" not in markup  # a cell's text is never markup
    assert 'title="the interval &quot;excludes&quot; zero"' in markup
    assert '<td style="color: green">▲ better</td>' in markup
    shown = tables(at)[0]
    assert list(shown.columns) == ["Task", "Verdict"]
    assert shown.values.tolist() == [["a<b", "▲ better"], ["Overall", ""]]  # None shows empty
