"""What a request may carry: JSON bounded in size and depth, text a database can store, and
dates in a range the calendar arithmetic survives. Every endpoint reads its input through
these, so bad input is a 400 here and never a RecursionError, DataError or OverflowError
deeper down.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator

from web.errors import BadRequest

D = TypeVar("D", bound=date)
MAX_JSON_BYTES = 1_000_000
MAX_JSON_DEPTH = 32
# Slot searches add weeks and booking windows of up to ten years to a date, and local
# times shift by up to a day: far inside date.min and date.max, but past any real booking.
MIN_YEAR, MAX_YEAR = 1900, 2200

# NUL cannot be stored in PostgreSQL text; a lone surrogate cannot be encoded as UTF-8.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def storable(value: str) -> bool:
    """True when value can be stored as text on every supported database."""
    return _UNSTORABLE.search(value) is None


def check_text(value: str, name: str) -> str:
    """value, unless it holds a NUL or a lone surrogate (then a 400)."""
    if not storable(value):
        raise BadRequest(f"{name} contains characters that are not allowed", code="invalid_text")
    return value


def json_value(raw: bytes) -> Any:
    """The JSON value of a request body; an empty body is ``{}`` (every field optional).

    Refused with a 400: more than MAX_JSON_BYTES, nesting deeper than MAX_JSON_DEPTH,
    invalid JSON (NaN and Infinity too), and strings a database cannot store.
    """
    if len(raw) > MAX_JSON_BYTES:
        raise BadRequest("request body too large", code="too_large")
    if not raw.strip():
        return {}
    if _depth(raw) > MAX_JSON_DEPTH:
        raise BadRequest(f"JSON nested deeper than {MAX_JSON_DEPTH} levels", code="too_deep")
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadRequest("request body is not valid JSON", code="malformed_json") from None
    _check_strings(data)
    return data


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _depth(raw: bytes) -> int:
    """How deep the brackets of raw nest, outside strings (stops counting past the limit)."""
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > MAX_JSON_DEPTH:
                break
    return deepest


def _check_strings(data: Any) -> None:
    """Refuse a NUL or lone surrogate in any key or string of a parsed JSON value."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            check_text(item, "a string in the request body")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def in_range(value: D) -> bool:
    """True when the year of value (a date or datetime) lies in MIN_YEAR..MAX_YEAR."""
    return MIN_YEAR <= value.year <= MAX_YEAR


def check_date(value: D, name: str) -> D:
    """value (a date or datetime) when ``in_range``; else a 400."""
    if not in_range(value):
        raise BadRequest(f"{name} must lie in the years {MIN_YEAR}–{MAX_YEAR}", code="out_of_range")
    return value


def _year_in_range(value: datetime) -> datetime:
    if not in_range(value):
        raise ValueError(f"must lie in the years {MIN_YEAR}–{MAX_YEAR}")
    return value


# A pydantic field type for a date-time of a JSON body, in range.
Instant = Annotated[datetime, AfterValidator(_year_in_range)]
