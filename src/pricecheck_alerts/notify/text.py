"""Text helpers shared by every destination: lengths as services count them, clipping,
one-line collapsing and Slack mrkdwn escaping of text we did not write.

Lengths are counted in UTF-16 code units, which is never less than the characters a service
counts, so emoji and Arabic text stay within limits too.
"""

from __future__ import annotations

import json
from typing import Any

ELLIPSIS = "…"


def units(text: str) -> int:
    """Length in UTF-16 code units (an emoji counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-16 units, marked with an ellipsis when cut."""
    if units(text) <= limit:
        return text
    out, used = [], 0
    for char in text:
        size = units(char)
        if used + size > limit - 1:
            break
        out.append(char)
        used += size
    return "".join(out) + ELLIPSIS


def one_line(text: str) -> str:
    """Collapse whitespace (newlines included) for headers, summaries and subjects."""
    return " ".join(text.split())


_MRKDWN_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def mrkdwn(text: str, limit: int) -> str:
    """Escape text we did not write for Slack mrkdwn, then clip without splitting `&amp;`."""
    pieces = [_MRKDWN_ESCAPES.get(char, char) for char in text]
    escaped = "".join(pieces)
    if units(escaped) <= limit:
        return escaped
    out, used = [], 0
    for piece in pieces:
        used += units(piece)
        if used > limit - 1:
            break
        out.append(piece)
    return "".join(out) + ELLIPSIS


def display(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
