"""reproduction/table3_notes.py: which notes a table gets, and how they read."""

import pytest

from reproduction.table3_notes import config_notes, notes_markdown

CONFIG = {"notes": {
    "*": "every table",
    "gowalla/mf": {"Loss form": "reference.", "Budget": "120 epochs."},
    "ml-1m/lightgcn": "uniform negatives",
    "gowalla": "one line",
}}


def test_notes_of_a_dataset_in_config_order_one_entry_per_topic():
    assert config_notes(CONFIG, "gowalla") == [
        {"scope": "*", "topic": None, "text": "every table"},
        {"scope": "gowalla/mf", "topic": "Loss form", "text": "reference."},
        {"scope": "gowalla/mf", "topic": "Budget", "text": "120 epochs."},
        {"scope": "gowalla", "topic": None, "text": "one line"},
    ]
    assert [n["scope"] for n in config_notes(CONFIG, "ml-1m")] == ["*", "ml-1m/lightgcn"]
    assert config_notes({}, "gowalla") == []


def test_markdown_has_a_section_per_scope_and_a_bullet_per_topic():
    lines = notes_markdown(config_notes(CONFIG, "gowalla"))
    assert "\n".join(lines) == "\n".join([
        "## Notes", "",
        "### *", "", "* every table", "",
        "### gowalla/mf", "", "* **Loss form.** reference.", "* **Budget.** 120 epochs.", "",
        "### gowalla", "", "* one line", "",
    ])
    assert notes_markdown([]) == []


def test_a_note_that_is_not_text_is_refused_with_its_key():
    with pytest.raises(ValueError, match=r"notes\.gowalla/mf\.Budget must be text, got 120"):
        config_notes({"notes": {"gowalla/mf": {"Budget": 120}}}, "gowalla")
    with pytest.raises(ValueError, match=r"notes\.gowalla must be text, got \['a'\]"):
        config_notes({"notes": {"gowalla": ["a"]}}, "gowalla")
