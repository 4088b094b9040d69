"""The one Markdown-table writer of the tables, the statistics and the report."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

_RULE = {"l": "---", "r": "---:", "c": ":-:"}


def cell(text: str) -> str:
    """A pipe inside a cell ('|G| = 8') would end it."""
    return text.replace("|", r"\|")


def table_lines(header: Sequence[str], align: str, rows: Iterable[Sequence[str]]) -> list[str]:
    """Header, rule and one line per row; ``align`` has one letter per column: l(eft), r(ight), c(entre).
    Cells are written as given (escape them with ``cell`` where they may hold a pipe)."""
    if len(align) != len(header):
        raise ValueError(f"align {align!r} has {len(align)} letters for {len(header)} columns")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(_RULE[a] for a in align) + "|"]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row of {len(row)} cells under {len(header)} columns: {list(row)}")
        lines.append("| " + " | ".join(row) + " |")
    return lines


def table(header: Sequence[str], align: str, rows: Iterable[Sequence[str]]) -> str:
    """The table as text, ending with a newline."""
    return "\n".join(table_lines(header, align, rows)) + "\n"
