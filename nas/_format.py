"""Plain-text tables and human-readable numbers for the CLI."""

from __future__ import annotations

from collections.abc import Sequence


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        # numbers right-aligned, text left-aligned
        return "  ".join(c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths), *(line(r) for r in cells[1:])])


def _numeric(text: str) -> bool:
    return text.replace(",", "").replace(".", "", 1).replace("%", "").lstrip("+-").isdigit()


def millions(n: int) -> str:
    return f"{n / 1e6:.2f}"


def giga(n: int) -> str:
    return f"{n / 1e9:.3f}"


def accuracy_cell(metrics: dict, kind: str) -> str:
    """A candidate's accuracy as the job states it: measured, predicted with its spread, or a score."""
    value = metrics.get("accuracy")
    if value is None:
        return "-"
    if kind == "score":
        return f"{value:.4g}"
    if metrics.get("measured_accuracy") is not None:
        return f"{value:.4f} measured"
    std = metrics.get("accuracy_std")
    return f"{value:.4f} ±{std:.4f}" if std is not None else f"{value:.4f}"


ACCURACY_HEADER = {"predicted": "accuracy", "score": "score (no units)", "evaluator": "accuracy"}
