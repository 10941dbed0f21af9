"""Every module of the project stays under 400 lines: a longer one is split along its seams."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
LAYERS = ("events", "libs", "services", "apps")
LIMIT = 400


def line_counts() -> dict[str, int]:
    return {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for layer in LAYERS
        for path in (ROOT / layer).rglob("*.py")
    }


def test_every_module_is_under_the_limit() -> None:
    counts = line_counts()
    assert len(counts) > 100, "the scan found too few modules: are the layers still there?"
    too_long = {path: lines for path, lines in sorted(counts.items()) if lines >= LIMIT}
    assert not too_long, f"modules of {LIMIT} lines or more: {too_long}"
