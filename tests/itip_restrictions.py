"""libical's iTIP restriction check (icalrestriction_check, RFC 5546's tables), over ctypes.

libical marks every property or component a METHOD forbids, requires or limits with an
X-LIC-ERROR property; restriction_errors returns those texts, so a test asserts []. The
Debian package libical3 carries the library; without it the calling test is skipped.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re

import pytest

_UNFOLD = re.compile(r"\r?\n[ \t]")


def _library() -> ctypes.CDLL:
    name = ctypes.util.find_library("ical") or "libical.so.3"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        pytest.skip("libical is not installed (apt-get install libical3)")
    lib.icalparser_parse_string.restype = ctypes.c_void_p
    lib.icalparser_parse_string.argtypes = [ctypes.c_char_p]
    lib.icalrestriction_check.restype = ctypes.c_int
    lib.icalrestriction_check.argtypes = [ctypes.c_void_p]
    lib.icalcomponent_as_ical_string.restype = ctypes.c_char_p
    lib.icalcomponent_as_ical_string.argtypes = [ctypes.c_void_p]
    lib.icalcomponent_free.argtypes = [ctypes.c_void_p]
    return lib


def restriction_errors(ics: str) -> list[str]:
    """The X-LIC-ERROR texts libical's parser and iTIP restriction check put into ics."""
    lib = _library()
    component = lib.icalparser_parse_string(ics.encode())
    if not component:
        return ["libical could not parse the calendar"]
    try:
        lib.icalrestriction_check(component)
        text = (lib.icalcomponent_as_ical_string(component) or b"").decode("utf-8", "replace")
    finally:
        lib.icalcomponent_free(component)
    lines = _UNFOLD.sub("", text).splitlines()
    return list(dict.fromkeys(line for line in lines if line.upper().startswith("X-LIC-ERROR")))
