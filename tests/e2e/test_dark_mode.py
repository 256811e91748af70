"""Every text on the public and provider pages stays readable in dark and light mode.

Chromium renders each page with ``prefers-color-scheme`` emulated; a script reads the
computed colour of every visible text, button and form field and the background it sits
on (semi-transparent layers blended over what lies below), and the test computes the WCAG
2 contrast ratio of each pair. Catches: ``color-scheme: light dark`` turning the text white
while buttons keep a light background (white on near-white slot buttons).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from core.runtime import Runtime
from tests.e2e.browser import ARTIFACTS
from tests.integration.api.helpers import make_provider, served
from tests.integration.me.helpers import sign_in
from tests.integration.negotiation.helpers import GUEST, booked, links, outbox

AA = 4.5  # WCAG 2 level AA for normal text

# Returns [description, text colour, background] for every visible element that shows
# text of its own, every button and every form field. Colours are [r, g, b, a].
_READ_COLOURS = """
const dark = matchMedia('(prefers-color-scheme: dark)').matches;
const canvas = dark ? [18, 18, 18, 1] : [255, 255, 255, 1];
function rgba(text) {
  const m = text.match(/rgba?\\(([^)]+)\\)/);
  if (!m) return null;
  const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
  return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
}
function over(top, below) {
  const a = top[3];
  return [0, 1, 2].map(i => top[i] * a + below[i] * (1 - a)).concat([1]);
}
function background(el) {
  const layers = [];
  for (let e = el; e; e = e.parentElement) {
    const c = rgba(getComputedStyle(e).backgroundColor);
    if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
  }
  let colour = canvas;
  for (const layer of layers.reverse()) colour = over(layer, colour);
  return colour;
}
function ownText(el) {
  if (['INPUT', 'SELECT', 'TEXTAREA', 'BUTTON'].includes(el.tagName)) return true;
  return [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
}
const found = [];
for (const el of document.body.querySelectorAll('*')) {
  if (['SCRIPT', 'STYLE', 'OPTION', 'OPTGROUP'].includes(el.tagName)) continue;
  if (el.type === 'hidden' || !el.getClientRects().length || !ownText(el)) continue;
  const bg = background(el);
  const label = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.className && typeof el.className === 'string' ? '.' + el.className : '') +
    ' "' + (el.innerText || el.value || '').trim().slice(0, 30) + '"';
  found.push([label, over(rgba(getComputedStyle(el).color), bg), bg]);
}
return [dark, found];
"""


def _luminance(colour: list[float]) -> float:
    def channel(value: float) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in colour[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(one: list[float], two: list[float]) -> float:
    """The WCAG 2 contrast ratio of two opaque colours, from 1 to 21."""
    high, low = sorted((_luminance(one), _luminance(two)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_contrast_formula_matches_wcag() -> None:
    assert contrast([0, 0, 0, 1], [255, 255, 255, 1]) == pytest.approx(21)
    assert contrast([118, 118, 118, 1], [255, 255, 255, 1]) == pytest.approx(4.54, abs=0.01)
    assert contrast([255, 255, 255, 1], [246, 248, 250, 1]) < 1.1  # the bug: white on #f6f8fa


def _scheme(driver: Any, scheme: str) -> None:
    features = [{"name": "prefers-color-scheme", "value": scheme}]
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": features})


def _poor_contrast(driver: Any, scheme: str) -> tuple[list[str], list[tuple[str, float]]]:
    """(labels of every text element read, those below AA with their ratio)."""
    dark, found = driver.execute_script(_READ_COLOURS)
    assert dark == (scheme == "dark"), "the emulated colour scheme did not apply"
    poor = [(label, round(contrast(fg, bg), 2)) for label, fg, bg in found]
    return [label for label, _, _ in found], [(label, r) for label, r in poor if r < AA]


def _public_pages(runtime: Runtime, admin_headers: dict[str, str]) -> tuple[Any, dict[str, str]]:
    """A client, and paths of each kind of public page: booking steps, links, errors, landing."""
    api, booking_id = booked(runtime, admin_headers, slug="ada")
    reschedule = links(next(r for r in outbox(runtime) if r.recipient == GUEST))["reschedule"]
    make_provider(api, admin_headers, slug="bea", instant_book=False)
    page = api.get("/book/bea", params={"tz": "UTC", "from": "2027-03-03"}).text
    start, end = re.findall(r'name="(?:start|end)" value="([^"]+)"', page)[:2]
    held = api.post("/book/bea/hold", data={"start": start, "end": end, "tz": "UTC"})
    done = api.post(str(held.url.path), data={"email": "gus@example.net", "tz": "UTC"})
    host_mail = next(r for r in outbox(runtime) if r.recipient == "bea@example.org")
    return api, {
        "booking": "/book/ada?tz=Europe/Berlin&m=taken",
        "request_to_book": "/book/bea?from=2027-04-29",
        "hold": f"{held.url.path}?tz=Europe/Berlin",
        "request_sent": str(done.url.path),
        "reschedule": f"/reschedule?r={reschedule}",
        "approve": f"/approve?t={links(host_mail)['approve']}",
        "used_link": "/approve?t=nonsense",
        "not_found": "/book/nobody",
        "sign_in": "/me",
        "landing": "/",
        "me_booking": f"/me/bookings/{booking_id}",
    }


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_public_and_provider_pages_are_readable(
    runtime: Runtime, admin_headers: dict[str, str], browser: Any, scheme: str
) -> None:
    api, paths = _public_pages(runtime, admin_headers)
    sign_in(api, runtime, "ada@example.org")
    cookie = api.cookies.get("parley_session", path="/me")
    driver = browser
    _scheme(driver, scheme)
    ARTIFACTS.mkdir(exist_ok=True)
    with served(runtime) as base:
        for name, path in paths.items():
            if name == "me_booking":
                driver.add_cookie({"name": "parley_session", "value": cookie, "path": "/me"})
            driver.get(base + path)
            labels, poor = _poor_contrast(driver, scheme)
            assert not poor, (name, poor)
            assert len(labels) >= 3, (name, labels)
            if name == "booking":
                assert sum("button.slot" in label for label in labels) > 3, labels
            driver.save_screenshot(str(ARTIFACTS / f"{scheme}_{name}.png"))
        for name in ("me", "me/availability", "me/bookings", "me/preview", "me/calendars",
                     "me/connect", "me/sessions"):  # fmt: skip
            driver.get(f"{base}/{name}")
            labels, poor = _poor_contrast(driver, scheme)
            assert any("button#sign-out" in label for label in labels), (name, labels)
            assert not poor, (name, poor)
        driver.save_screenshot(str(ARTIFACTS / f"{scheme}_me_sessions.png"))
