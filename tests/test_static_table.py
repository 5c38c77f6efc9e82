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


def _tiles_page():
    from streamlit_app import common

    common.tiles(
        [
            common.Tile("Local / month", "$41.78", "$0.42 / 1,000 req.", help='a "tip"'),
            common.Tile("Break-even", "<1 mo", "within life", "green"),
            common.Tile("ROI", "—"),
        ]
    )
    common.tiles([common.Tile("Energy", "not measured")], min_width_rem=10)


def test_tiles_show_label_value_and_note_escaped():
    from conftest import metrics

    at = AppTest.from_function(_tiles_page).run()
    assert not at.exception
    row, wrapping = (h.proto.body for h in at.get("html"))
    assert "grid-template-columns: repeat(3, 1fr)" in row, "equal columns, one per figure"
    assert "&lt;1 mo" in row and "<1 mo" not in row  # a value is never markup
    assert 'title="a &quot;tip&quot;"' in row
    assert 'class="fb-tile-delta green"' in row
    assert "fb-tiles-wrap" in wrapping and "--fb-tile-min: 10rem" in wrapping
    assert metrics(at) == {
        "Local / month": {"value": "$41.78", "delta": "$0.42 / 1,000 req."},
        "Break-even": {"value": "<1 mo", "delta": "within life"},
        "ROI": {"value": "—", "delta": None},
        "Energy": {"value": "not measured", "delta": None},
    }
