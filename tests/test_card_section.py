"""training.card_section: a measured section replaces its namesake in a model card (or is appended),
the rest of the card is kept byte for byte, and the tables come from the measuring JSON."""
from __future__ import annotations

from training.card_section import put_section, select_table, va_search_table

CARD = "# m\n\nintro\n\n## A\n\nold a\n\n## B\n\nkeep b\n"


def test_section_is_replaced_in_place_or_appended():
    new = put_section(CARD, "A", "new a")
    assert new == "# m\n\nintro\n\n## A\n\nnew a\n\n## B\n\nkeep b\n"
    assert put_section(new, "A", "new a") == new  # idempotent
    assert put_section(CARD, "C", "c").endswith("keep b\n\n## C\n\nc\n")
    last = put_section(CARD, "B", "b2")
    assert last.startswith("# m\n\nintro\n\n## A\n\nold a\n\n") and last.endswith("## B\n\nb2\n")


def test_tables_render_the_measurements():
    grid = {"judge_r_valence": 0.31, "judge_r_arousal": 0.72, "quality": {"music_quality_loss": 0.2},
            "degenerate": 0, "clips": 50}
    rows = select_table({"shipped": {"on": grid, "off": {**grid, "judge_r_valence": 0.0}}})
    assert rows[2] == "| shipped | on | 0.310 | 0.720 | 0.200 | 0 | 50 |" and "| shipped | off | 0.000 |" in rows[3]
    va = va_search_table([{"encoder": "e", "head": "ridge", "valence_r": 0.6, "valence_mae": 1.0,
                           "arousal_r": 0.7, "arousal_mae": 0.66}])
    assert va[2] == "| e | ridge | 0.600 | 1.000 | 0.700 | 0.660 |"
