"""README.md's configuration reference names every environment variable the code reads."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
# A quoted full name: prefixes built into f-strings ("VIRGA_KAFKA_") are not variables.
VARIABLE = re.compile(r"""["'`(](VIRGA_[A-Z0-9_]*[A-Z0-9])\b""")


def variables_in_code() -> set[str]:
    found: set[str] = set()
    for root in ("events", "libs", "services", "apps"):
        for path in (ROOT / root).rglob("*.py"):
            found.update(VARIABLE.findall(path.read_text()))
    return found


def test_every_variable_the_code_reads_is_in_the_readme() -> None:
    readme = ROOT / "README.md"
    documented = set(re.findall(r"VIRGA_[A-Z0-9_]*[A-Z0-9]", readme.read_text()))
    code = variables_in_code()
    assert len(code) > 40, "the scan found too few variables: is the pattern still right?"
    missing = sorted(code - documented)
    assert not missing, f"README.md's configuration reference lacks {missing}"
