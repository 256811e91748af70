"""Parse one inbound mail (raw bytes) into the facts Parley acts on.

Pure and total: `parse_message` never raises; mail it cannot read comes back with outcome
UNPARSEABLE and a reason. It uses the fast compat32 parser and decodes headers itself,
because the default email policy is several times slower.
"""

from __future__ import annotations

import binascii
import hashlib
import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.policy import compat32
from email.utils import collapse_rfc2231_value, getaddresses, parsedate_to_datetime

from core.imip.mail import CalendarPart, Outcome, ParsedMail, bare_address
from core.itip.errors import ItipError
from core.itip.read import ItipMessage, read_itip

MAX_RAW = 32 * 1024 * 1024
MAX_TEXT = 20_000
MAX_HTML = 400_000
MAX_HEADER = 16_384
MAX_HEADERS = 500
MAX_PARTS = 256
MAX_DEPTH = 16

_CALENDAR_TYPES = frozenset({"text/calendar", "application/ics", "text/x-vcalendar"})
_ICS_CARRIERS = frozenset({"application/octet-stream", "text/plain", "application/x-ics"})
_BOUNCE_LOCALS = frozenset({"mailer-daemon", "postmaster", "mail-daemon"})
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
_AUTO_FLAG_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder", "x-mail-autoreply")
_DELIVERED_HEADERS = ("delivered-to", "x-original-to", "envelope-to")
_AUTO_SUBJECT_RE = re.compile(
    r"\s*(out of (the )?office|automatic reply|auto[- ]?reply|auto[- ]?response|autoreply"
    r"|auto:|abwesenheitsnotiz|automatische antwort|réponse automatique|respuesta automática"
    r"|risposta automatica|afwezigheidsbericht|automatisch antwoord)",
    re.IGNORECASE,
)
_ENCODED_WORD_RE = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_MSG_ID_RE = re.compile(r"<([^<>\s\x00-\x1f\x7f]+)>")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_Q_HEX_RE = re.compile(rb"=([0-9A-Fa-f]{2})")
_FOLD_RE = re.compile(r"\r?\n(?=[ \t])")
_HTML_DROP_RE = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_HTML_COMMENT_RE = re.compile(r"<!--.*?-->", re.DOTALL)
_HTML_BREAK_RE = re.compile(r"<(br|/p|/div|/tr|/li|/h\d)\b[^>]*>", re.IGNORECASE)
_HTML_TAG_RE = re.compile(r"<[^>]*>")
_BLANKS_RE = re.compile(r"[ \t\r\f\v\xa0]+")
_MANY_LINES_RE = re.compile(r"\n\s*\n\s*\n+")


def parse_message(raw: bytes) -> ParsedMail:
    """Read raw RFC 5322 bytes; never raises, whatever the bytes are."""
    try:
        data = bytes(raw) if not isinstance(raw, str) else raw.encode("utf-8", "surrogateescape")
    except Exception as exc:
        return ParsedMail(content_hash="", outcome=Outcome.UNPARSEABLE, error=_why(exc))
    digest = hashlib.sha256(data).hexdigest()
    if len(data) > MAX_RAW:
        return ParsedMail(digest, Outcome.UNPARSEABLE, f"message of {len(data)} bytes too large")
    try:
        return _parse(data, digest)
    except Exception as exc:
        # Total by contract: the caller keeps the raw bytes and files this with the reason.
        return ParsedMail(digest, Outcome.UNPARSEABLE, "internal error: " + _why(exc))


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


@dataclass
class _Walk:
    calendars: list[CalendarPart] = field(default_factory=list)
    plain: str | None = None
    plain_cut: bool = False
    html: str | None = None
    reports: list[str] = field(default_factory=list)
    dsn: list[Message] = field(default_factory=list)
    forwarded_ids: list[str] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    parts: int = 0


def _parse(data: bytes, digest: str) -> ParsedMail:
    msg = BytesParser(policy=compat32).parsebytes(data)
    headers = _headers(msg)
    if not any(k in headers for k in ("from", "to", "date", "message-id", "subject")):
        return ParsedMail(digest, Outcome.UNPARSEABLE, "no mail headers found")
    walk = _Walk()
    _walk(msg, walk, forwarded=False, depth=0)
    from_name, from_address = _first_address(headers, "from")
    subject = _clip(_decode_header(_one(headers, "subject") or ""), 998)
    bounce = _bounce(headers, walk, from_address)
    itip, itip_error = _read_calendars(walk.calendars)
    auto = _auto_reason(headers, subject, walk, bounce is not None)
    text, cut = _body_text(walk)
    references = _msg_ids(_one(headers, "references"))
    return ParsedMail(
        content_hash=digest,
        outcome=_outcome(bounce is not None, itip, itip_error, auto),
        error=itip_error,
        message_id=next(iter(_msg_ids(_one(headers, "message-id"), loose=True)), None),
        from_address=from_address,
        from_name=from_name,
        reply_to=_first_address(headers, "reply-to")[1],
        to_addresses=_addresses(headers, ("to",)),
        cc_addresses=_addresses(headers, ("cc",)),
        delivered_to=_addresses(headers, _DELIVERED_HEADERS),
        subject=subject,
        in_reply_to=next(iter(_msg_ids(_one(headers, "in-reply-to"), loose=True)), None),
        references=references,
        date=_date(_one(headers, "date")),
        is_auto=auto is not None,
        auto_reason=auto,
        is_bounce=bounce is not None,
        bounced_recipients=bounce[0] if bounce else (),
        bounced_message_id=bounce[1] if bounce else None,
        calendar_parts=tuple(walk.calendars),
        has_forwarded_calendar=any(p.forwarded for p in walk.calendars),
        text=text,
        text_truncated=cut,
        itip=itip,
        defects=tuple(walk.defects[:20]),
    )


def _outcome(
    bounce: bool, itip: ItipMessage | None, error: str | None, auto: str | None
) -> Outcome:
    if bounce:
        return Outcome.BOUNCE
    if itip is not None:
        return Outcome.ITIP
    if error is not None:
        return Outcome.BAD_CALENDAR
    return Outcome.AUTO_REPLY if auto is not None else Outcome.PLAIN


# --- headers -------------------------------------------------------------------------------


def _headers(msg: Message) -> dict[str, list[str]]:
    """Header values by lower-cased name, unfolded, 8-bit bytes read as UTF-8 (or cp1252)."""
    found: dict[str, list[str]] = {}
    for count, (name, value) in enumerate(msg.raw_items()):
        if count >= MAX_HEADERS:
            break
        text = value if isinstance(value, str) else str(value)
        text = _FOLD_RE.sub("", text[:MAX_HEADER]).strip()
        if not text.isascii():
            text = _eight_bit(text)
        found.setdefault(name.strip().lower(), []).append(text)
    return found


def _eight_bit(text: str) -> str:
    # compat32 keeps undecodable header bytes as surrogate escapes of ASCII.
    raw = text.encode("ascii", "surrogateescape") if _has_escapes(text) else None
    if raw is None:
        return text
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _has_escapes(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text) and all(
        ord(ch) < 128 or "\udc80" <= ch <= "\udcff" for ch in text
    )


def _one(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return values[0] if values else None


def _clip(text: str, limit: int) -> str:
    return " ".join(text.split())[:limit]


def _decode_header(value: str) -> str:
    """Decode RFC 2047 encoded words; adjacent words are joined before decoding their bytes."""
    if "=?" not in value:
        return value
    chunks: list[tuple[str | None, bytes | str]] = []
    last = 0
    for match in _ENCODED_WORD_RE.finditer(value):
        between = value[last : match.start()]
        if between and not (between.isspace() and chunks and chunks[-1][0] is not None):
            chunks.append((None, between))
        charset = match.group(1).split("*")[0].lower()
        payload = _word_bytes(match.group(2), match.group(3))
        if chunks and chunks[-1][0] == charset and isinstance(chunks[-1][1], bytes):
            chunks[-1] = (charset, chunks[-1][1] + payload)
        else:
            chunks.append((charset, payload))
        last = match.end()
    chunks.append((None, value[last:]))
    return "".join(
        part if isinstance(part, str) else _decode_bytes(part, charset) for charset, part in chunks
    )


def _word_bytes(kind: str, text: str) -> bytes:
    if kind in "bB":
        return _b64(text.encode("ascii", "replace"))
    return _Q_HEX_RE.sub(
        lambda m: bytes([int(m.group(1), 16)]), text.replace("_", " ").encode("ascii", "replace")
    )


def _b64(data: bytes) -> bytes:
    cleaned = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
    cleaned = cleaned[: len(cleaned) - len(cleaned) % 4] if len(cleaned) % 4 == 1 else cleaned
    try:
        return binascii.a2b_base64(cleaned + b"=" * (-len(cleaned) % 4))
    except binascii.Error:
        return b""


def _decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode text bytes: valid UTF-8 first (mislabelled parts are common), then the label."""
    label = (charset or "").strip().strip('"').lower()
    wide = label.startswith(("utf-16", "utf-32", "ucs"))
    candidates = [label, "utf-8"] if wide else ["utf-8", label]
    for candidate in candidates:
        if not candidate:
            continue
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeError, ValueError, TypeError):
            continue
    return data.decode("cp1252", errors="replace")


def _first_address(headers: dict[str, list[str]], name: str) -> tuple[str | None, str | None]:
    value = _one(headers, name)
    if not value:
        return None, None
    pairs = getaddresses([value])
    if not pairs:
        return None, None
    display, address = pairs[0]
    display = _clip(_decode_header(display), 300) if display else ""
    return display or None, bare_address(address) or None


def _addresses(headers: dict[str, list[str]], names: tuple[str, ...]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for name in names:
        for value in headers.get(name, ()):
            for _display, address in getaddresses([value]):
                cleaned = bare_address(address)
                if "@" in cleaned:
                    found.setdefault(cleaned, None)
    return tuple(found)


def _msg_ids(value: str | None, loose: bool = False) -> tuple[str, ...]:
    """Message ids without their angle brackets; loose accepts one bare id too.

    An id with control characters is no id. The rest is not checked further: ids are
    looked up, and a composer checks one before it goes into a header (is_message_id).
    """
    if not value:
        return ()
    ids = tuple(m[:998] for m in _MSG_ID_RE.findall(value))
    if not ids and loose:
        bare = value.strip().strip("<>").strip()
        plain = bare and not any(c.isspace() for c in bare) and not _CONTROL_RE.search(bare)
        return (bare[:998],) if plain else ()
    return ids


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


# --- parts ---------------------------------------------------------------------------------


def _walk(part: Message, walk: _Walk, forwarded: bool, depth: int) -> None:
    walk.parts += 1
    if walk.parts > MAX_PARTS or depth > MAX_DEPTH:
        walk.defects.append("too many or too deeply nested parts")
        return
    try:
        _visit(part, walk, forwarded, depth)
    except Exception as exc:
        # One broken part must not hide the readable ones next to it.
        walk.defects.append("internal error: " + _why(exc))


def _visit(part: Message, walk: _Walk, forwarded: bool, depth: int) -> None:
    ctype = part.get_content_type()
    # is_multipart() first: get_payload() on a leaf decodes with its (possibly bogus) charset.
    payload = part.get_payload() if part.is_multipart() else None
    if isinstance(payload, list):
        if ctype == "message/delivery-status":
            if not forwarded:
                walk.dsn.extend(p for p in payload if isinstance(p, Message))
            return
        inner = forwarded or ctype.startswith("message/")
        if ctype == "multipart/report" and not forwarded:
            walk.reports.append(str(part.get_param("report-type") or "").lower())
        for sub in payload:
            if isinstance(sub, Message):
                if inner and not forwarded and ctype.startswith("message/"):
                    walk.forwarded_ids.extend(_msg_ids(_get(sub, "message-id"), loose=True)[:1])
                _walk(sub, walk, inner, depth + 1)
        return
    _leaf(part, ctype, walk, forwarded)


def _leaf(part: Message, ctype: str, walk: _Walk, forwarded: bool) -> None:
    filename = _filename(part)
    attachment = (part.get_content_disposition() or "") == "attachment"
    if ctype in _CALENDAR_TYPES or (
        ctype in _ICS_CARRIERS and (filename or "").lower().endswith((".ics", ".ical", ".ifb"))
    ):
        walk.calendars.append(_calendar_part(part, ctype, filename, attachment, forwarded))
    elif ctype == "text/rfc822-headers" and not forwarded:
        headers = HeaderParser(policy=compat32).parsestr(_part_text(part)[: MAX_HEADER * 4])
        walk.forwarded_ids.extend(_msg_ids(_get(headers, "message-id"), loose=True)[:1])
    elif forwarded or attachment:
        return
    elif ctype == "text/plain" and walk.plain is None:
        text = _part_text(part)
        walk.plain, walk.plain_cut = text[:MAX_TEXT], len(text) > MAX_TEXT
    elif ctype == "text/html" and walk.html is None:
        walk.html = _part_text(part)[:MAX_HTML]


def _get(msg: Message, name: str) -> str | None:
    """A header as text: compat32 hands back Header objects for 8-bit values."""
    value = msg.get(name)
    return None if value is None else str(value)[:MAX_HEADER]


def _filename(part: Message) -> str | None:
    raw = part.get_param("filename", header="content-disposition") or part.get_param("name")
    if not raw:
        return None
    name = collapse_rfc2231_value(raw) if isinstance(raw, tuple) else str(raw)
    return _decode_header(name)[:255] or None


def _calendar_part(
    part: Message, ctype: str, filename: str | None, attachment: bool, forwarded: bool
) -> CalendarPart:
    method = part.get_param("method")
    method_text = collapse_rfc2231_value(method) if isinstance(method, tuple) else method
    return CalendarPart(
        content_type=ctype,
        method=str(method_text).strip().upper() or None if method_text else None,
        charset=part.get_content_charset(),
        filename=filename,
        attachment=attachment,
        forwarded=forwarded,
        data=_payload(part),
    )


def _payload(part: Message) -> bytes:
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _part_text(part: Message) -> str:
    return _decode_bytes(_payload(part), part.get_content_charset())


def _read_calendars(parts: list[CalendarPart]) -> tuple[ItipMessage | None, str | None]:
    """The first own calendar part that reads as iTIP; else the first part's error."""
    own = sorted(
        (p for p in parts if not p.forwarded),
        key=lambda p: (p.content_type != "text/calendar", p.attachment),
    )
    first_error: str | None = None
    seen: set[bytes] = set()
    for part in own:
        if part.data in seen:
            continue
        seen.add(part.data)
        try:
            return read_itip(_decode_bytes(part.data, part.charset), part.method), None
        except ItipError as exc:
            first_error = first_error or f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            # A reader bug must still leave the rest of the mail classified.
            first_error = first_error or "internal error: " + _why(exc)
    return None, first_error


def _body_text(walk: _Walk) -> tuple[str, bool]:
    if walk.plain is not None and walk.plain.strip():
        return walk.plain.strip(), walk.plain_cut
    if walk.html:
        text = _strip_html(walk.html)
        return text[:MAX_TEXT], len(text) > MAX_TEXT
    return (walk.plain or "").strip(), walk.plain_cut


def _strip_html(markup: str) -> str:
    text = _HTML_DROP_RE.sub(" ", _HTML_COMMENT_RE.sub(" ", markup))
    text = _HTML_BREAK_RE.sub("\n", text)
    text = html.unescape(_HTML_TAG_RE.sub("", text))
    lines = (_BLANKS_RE.sub(" ", line).strip() for line in text.split("\n"))
    return _MANY_LINES_RE.sub("\n\n", "\n".join(lines)).strip()


# --- bounces and automated mail ----------------------------------------------------------


def _bounce(
    headers: dict[str, list[str]], walk: _Walk, sender: str | None
) -> tuple[tuple[str, ...], str | None] | None:
    """(bounced recipients, original Message-ID) for a delivery failure, else None."""
    failed, delayed = _dsn_recipients(walk.dsn)
    failed += tuple(
        a for v in headers.get("x-failed-recipients", ()) for a in _split_list(v) if "@" in a
    )
    is_report = "delivery-status" in walk.reports
    local = (sender or "").partition("@")[0]
    by_sender = local in _BOUNCE_LOCALS
    if is_report and delayed and not failed:
        return None  # a delay notice: automated, but the mail may still arrive
    if not (is_report or by_sender or failed):
        return None
    original = walk.forwarded_ids[0] if walk.forwarded_ids else None
    return tuple(dict.fromkeys(failed)), original


def _dsn_recipients(blocks: list[Message]) -> tuple[tuple[str, ...], bool]:
    failed: list[str] = []
    delayed = False
    for block in blocks:
        recipient = _get(block, "final-recipient") or _get(block, "original-recipient")
        if not recipient:
            continue
        action = (_get(block, "action") or "failed").strip().lower()
        address = bare_address(str(recipient).rpartition(";")[2])
        if action == "failed" and "@" in address:
            failed.append(address)
        elif action == "delayed":
            delayed = True
    return tuple(failed), delayed


def _split_list(value: str) -> list[str]:
    return [bare_address(v) for v in value.split(",") if v.strip()]


def _auto_reason(
    headers: dict[str, list[str]], subject: str, walk: _Walk, bounce: bool
) -> str | None:
    """Why this mail is automated (never answer it automatically), or None."""
    submitted = (_one(headers, "auto-submitted") or "").split(";")[0].strip().lower()
    if submitted and submitted != "no":
        return f"auto-submitted: {submitted}"
    precedence = (_one(headers, "precedence") or "").strip().lower()
    if precedence in _BULK_PRECEDENCE:
        return f"precedence: {precedence}"
    for name in _AUTO_FLAG_HEADERS:
        if name in headers:
            return f"{name} header"
    if (_one(headers, "return-path") or "").strip() == "<>":
        return "null return path"
    if bounce:
        return "delivery failure report"
    if walk.reports:
        return f"report: {walk.reports[0] or 'unknown'}"
    if _AUTO_SUBJECT_RE.match(subject):
        return "automatic-reply subject"
    return None
