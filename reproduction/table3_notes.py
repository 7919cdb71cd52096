"""The ``[notes]`` of a Table 3 config: selection by dataset and their markdown."""

from __future__ import annotations

from typing import Any


def config_notes(config: dict[str, Any], dataset: str) -> list[dict[str, str | None]]:
    """The config's ``[notes]`` that concern ``dataset``, one entry per topic.

    A note is either one string (``"gowalla/mf" = "..."``) or a table of topics
    (``[notes."gowalla/mf"]`` with ``"Loss form" = "..."``, in the order
    written); its key is ``"*"`` (every table) or a selector naming the
    dataset (``"gowalla"``, ``"gowalla/mf"``).

    Returns:
        ``[{"scope": key, "topic": topic or None, "text": text}, ...]``.

    Raises:
        ValueError: a note or topic that is not text, quoting its key.
    """
    notes: list[dict[str, str | None]] = []
    for key, value in config.get("notes", {}).items():
        if key != "*" and dataset not in key.split("/"):
            continue
        topics = value.items() if isinstance(value, dict) else [(None, value)]
        for topic, text in topics:
            if not isinstance(text, str):
                where = f"{key}.{topic}" if topic else key
                raise ValueError(f"notes.{where} must be text, got {text!r}")
            notes.append({"scope": key, "topic": topic, "text": text})
    return notes


def notes_markdown(notes: list[dict[str, str | None]]) -> list[str]:
    """Markdown lines of :func:`config_notes`' entries: a section per scope, a bullet per topic.

    Example:
        >>> notes_markdown([{"scope": "x/mf", "topic": "Budget", "text": "8 epochs."}])
        ['## Notes', '', '### x/mf', '', '* **Budget.** 8 epochs.', '']
    """
    if not notes:
        return []
    lines = ["## Notes", ""]
    for scope in dict.fromkeys(note["scope"] for note in notes):
        lines += [f"### {scope}", ""]
        lines += [f"* **{note['topic']}.** {note['text']}" if note["topic"] else f"* {note['text']}"
                  for note in notes if note["scope"] == scope]
        lines.append("")
    return lines
