"""Text from the run's data, shown in Markdown so that nothing in it renders.

Error messages, stage errors and the endpoint come from the run's data, which for
a fork's pull request is the fork's. In a comment posted by the repository's own
bot, a link, an image, a bare URL, a mention, a cross-reference (owner/repo#123,
which notifies another issue) or HTML in them would render as if the bot said it.
Inside a code span none of these render, so every such text is shown as one.
"""

from __future__ import annotations

import re

_BACKTICKS = re.compile(r"`+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def inert(text: object, limit: int = 200, *, in_table: bool = False) -> str:
    """text as a code span of at most limit characters, on one line; '–' when empty.

    The fence is one backtick longer than the longest run of backticks in the text, and
    padded with a space on each side (which Markdown strips), so backticks in the text
    cannot close it. In a table, '|' is escaped, since tables split cells before code spans.
    """
    cleaned = " ".join(_CONTROL.sub(" ", str(text)).split())
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1] + "…"
    if not cleaned:
        return "–"
    if in_table:
        cleaned = cleaned.replace("|", "\\|")
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(cleaned)), default=0) + 1)
    return f"{fence} {cleaned} {fence}"
