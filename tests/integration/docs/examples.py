"""The `curl` examples of a Markdown page: each command as bash runs it, and the statuses the
comment after it gives."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_STATUS = re.compile(r"^#\s*([1-5]\d\d)\b")
_MORE = re.compile(r"(?:;|, or|then)\s*([1-5]\d\d)\b")


@dataclass(frozen=True)
class Example:
    command: str
    """The command as written, continuation lines and all (bash ignores its comment)."""
    statuses: frozenset[int]
    """The statuses its comment gives."""
    any_success: bool
    """Whether a 2xx is right too (the comment gives no status first)."""

    def accepts(self, status: int) -> bool:
        return status in self.statuses or (self.any_success and 200 <= status < 300)


def _comment_of(line: str) -> str:
    """The `# ...` part of a command line, outside quotes."""
    quoted = False
    for index, char in enumerate(line):
        if char == "'":
            quoted = not quoted
        elif char == "#" and not quoted and (index == 0 or line[index - 1].isspace()):
            return line[index:]
    return ""


def examples(page: Path) -> list[Example]:
    found: list[Example] = []
    in_block = False
    command: list[str] = []
    comments: list[str] = []

    def close() -> None:
        if command:
            said = [c.strip() for c in comments if c.strip()]
            leading = [_STATUS.match(c) for c in said]
            statuses = {int(s) for c in said for s in _MORE.findall(c)}
            statuses |= {int(found_status[1]) for found_status in leading if found_status}
            unsaid = not said or leading[0] is None
            found.append(Example("\n".join(command), frozenset(statuses), unsaid))
        command.clear()
        comments.clear()

    for line in page.read_text().splitlines():
        if line.startswith("```"):
            close()
            in_block = line.startswith("```sh")
            continue
        if not in_block:
            continue
        stripped = line.strip()
        continuing = command and (
            command[-1].rstrip().endswith("\\") or "".join(command).count("'") % 2 == 1
        )
        if continuing:
            command.append(line)
            if not line.rstrip().endswith("\\") and "".join(command).count("'") % 2 == 0:
                comments.append(_comment_of(line))
        elif stripped.startswith("curl "):
            close()
            command.append(line)
            if not line.rstrip().endswith("\\"):
                comments.append(_comment_of(line))
        elif stripped.startswith("#") and command:
            comments.append(stripped)
    close()
    return found
