"""WebDAV XML shared by the scheduling parts of the bridge: namespaces, property names and
error bodies (RFC 4918 §16: a DAV:error naming the failed precondition)."""

from __future__ import annotations

import io
from xml.etree import ElementTree as ET

from radicale import types, xmlutils

D = "{DAV:}"
C = "{urn:ietf:params:xml:ns:caldav}"
P = "{urn:parley:caldav}"
CALENDAR_AVAILABILITY = f"{C}calendar-availability"


def to_bytes(root: ET.Element) -> bytes:
    ET.register_namespace("P", P[1:-1])
    out = io.BytesIO()
    ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)
    return out.getvalue()


def dav_error(status: int, precondition: str, message: str) -> types.WSGIResponse:
    """``status`` with a DAV:error body naming ``precondition`` (Clark or C:/D: name)
    and a readable reason."""
    root = ET.Element(f"{D}error")
    ET.SubElement(root, xmlutils.make_clark(precondition))
    ET.SubElement(root, f"{P}message").text = message
    return status, {"Content-Type": "application/xml; charset=utf-8"}, to_bytes(root), None
