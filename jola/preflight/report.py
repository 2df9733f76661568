"""Check results and the one table preflight prints."""

from __future__ import annotations

from dataclasses import dataclass

OK, MISSING, PROBLEM, NOTE = "ok", "MISSING", "PROBLEM", "note"
FAILING = (MISSING, PROBLEM)
GIB = 1024**3


@dataclass
class Check:
    """One line of the table: what was checked, its status and a one-line detail."""

    kind: str  # model, dataset, bertscore encoder, gpu, disk, time, config, hub, runs
    name: str
    status: str  # ok, MISSING, PROBLEM, note
    detail: str

    @property
    def failed(self) -> bool:
        return self.status in FAILING

    def reason(self) -> str:
        """The one-line reason of a failed check."""
        return f"{self.kind} {self.name}: {self.detail}"


def gib(size: float) -> str:
    """Bytes as GiB with one decimal (two below 1 GiB)."""
    value = size / GIB
    return f"{value:.2f} GiB" if value < 1 else f"{value:.1f} GiB"


def count(number: int) -> str:
    """A parameter count: 8.03B, 134.5M, 107,200."""
    if number >= 10**9:
        return f"{number / 10**9:.2f}B"
    if number >= 10**6:
        return f"{number / 10**6:.1f}M"
    return f"{number:,}"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render(checks: list[Check], footnotes: list[str]) -> str:
    """The Markdown table, its footnotes, and the failed checks one per line."""
    lines = ["| check | what | status | detail |", "|---|---|---|---|"]
    for check in checks:
        cells = (check.kind, check.name, check.status, check.detail)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines.append("")
    lines += [f"{i}. {note}" for i, note in enumerate(footnotes, start=1)]
    failed = [c for c in checks if c.failed]
    if failed:
        lines.append("")
        lines.append(f"{len(failed)} problem{'s' if len(failed) != 1 else ''}:")
        lines += [f"- {c.reason()}" for c in failed]
    return "\n".join(lines)
