"""Cheap text-level reading of iCalendar: unfolding, component spans, property lines, values.

This is what lets a long feed be filtered without building icalendar objects: spans are
offsets into one unfolded string, and values are read only for the lines asked for.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

_ESCAPE = re.compile(r"\\([\\;,nN])")
_DURATION = re.compile(
    r"^([+-])?P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Prop:
    """One content line: NAME;PARAMS:VALUE with parameter names upper-cased."""

    name: str
    params: dict[str, str]
    value: str


def unfold(text: str) -> str:
    """Line ends as \\n and folded continuation lines joined (RFC 5545 §3.1)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("\n ", "").replace("\n\t", "")


def spans(text: str, component: str) -> Iterator[tuple[int, int]]:
    """(start, end) offsets of each BEGIN:component … END:component body, nesting ignored.

    start is just after the BEGIN line, end at the \\n before END, so text[start - 1] is \\n.
    """
    begin, end_marker = f"BEGIN:{component}\n", f"\nEND:{component}"
    pos = text.find(begin)
    while pos >= 0:
        if pos == 0 or text[pos - 1] == "\n":
            start = pos + len(begin)
            stop = text.find(end_marker, start - 1)
            if stop < 0:
                return
            yield start, stop
            pos = text.find(begin, stop)
        else:
            pos = text.find(begin, pos + 1)


def first_line(text: str, start: int, end: int, name: str) -> str | None:
    """The first line inside [start, end) whose property name is exactly name, or None."""
    needle = "\n" + name
    pos = text.find(needle, start - 1, end)
    while pos >= 0:
        after = pos + len(needle)
        if after < len(text) and text[after] in ";:":
            stop = text.find("\n", after, end + 1)
            return text[pos + 1 : stop if stop >= 0 else end]
        pos = text.find(needle, after, end)
    return None


def value_of(line: str) -> str:
    """The value of a date-like line (such values never contain a colon)."""
    return line.rpartition(":")[2].strip()


def props(text: str, start: int, end: int) -> dict[str, list[Prop]]:
    """All properties of the component body [start, end), skipping nested components."""
    found: dict[str, list[Prop]] = {}
    depth = 0
    for line in text[start:end].split("\n"):
        upper = line[:6].upper()
        if upper == "BEGIN:":
            depth += 1
        elif upper.startswith("END:"):
            depth -= 1
        elif depth == 0 and line.strip():
            prop = split_line(line)
            if prop is not None:
                found.setdefault(prop.name, []).append(prop)
    return found


def split_line(line: str) -> Prop | None:
    """Parse one content line, honouring quoted parameter values; None when malformed."""
    colon = line.find(":")
    semi = line.find(";")
    if colon < 0:
        return None
    if semi < 0 or semi > colon:
        return Prop(line[:colon].upper(), {}, line[colon + 1 :])
    name, params, pos = line[:semi].upper(), {}, semi
    while pos < len(line) and line[pos] == ";":
        eq = line.find("=", pos)
        if eq < 0:
            return None
        key, pos = line[pos + 1 : eq].upper(), eq + 1
        if pos < len(line) and line[pos] == '"':
            close = line.find('"', pos + 1)
            if close < 0:
                return None
            params[key], pos = line[pos + 1 : close], close + 1
        else:
            stop = min(
                (i for i in (line.find(";", pos), line.find(":", pos)) if i >= 0), default=-1
            )
            if stop < 0:
                return None
            params[key], pos = line[pos:stop], stop
    if pos >= len(line) or line[pos] != ":":
        return None
    return Prop(name, params, line[pos + 1 :])


def unescape(value: str) -> str:
    """TEXT value with its backslash escapes resolved."""
    if "\\" not in value:
        return value
    return _ESCAPE.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def parse_date_value(value: str) -> date | datetime:
    """A DATE or DATE-TIME value, naive; UTC 'Z' times come back with tzinfo unset too.

    Raises ValueError when the value is neither. Callers check value.endswith('Z').
    """
    v = value.strip().upper().rstrip("Z")
    if len(v) == 8 and v.isdigit():
        return date(int(v[:4]), int(v[4:6]), int(v[6:8]))
    if len(v) >= 13 and v[8] == "T" and v[:8].isdigit() and v[9:].isdigit():
        second = int(v[13:15]) if len(v) >= 15 else 0
        return datetime(
            int(v[:4]), int(v[4:6]), int(v[6:8]), int(v[9:11]), int(v[11:13]), min(second, 59)
        )
    raise ValueError(f"not a DATE or DATE-TIME: {value!r}")


def parse_duration(value: str) -> timedelta:
    """A DURATION value (RFC 5545 §3.3.6); raises ValueError when malformed."""
    match = _DURATION.match(value.strip())
    if match is None or value.strip().upper() in ("P", "PT", "+P", "-P"):
        raise ValueError(f"not a DURATION: {value!r}")
    sign, weeks, days, hours, minutes, seconds = match.groups()
    delta = timedelta(
        weeks=int(weeks or 0),
        days=int(days or 0),
        hours=int(hours or 0),
        minutes=int(minutes or 0),
        seconds=int(seconds or 0),
    )
    return -delta if sign == "-" else delta
