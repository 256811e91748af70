"""Every business metric Parley exports, in one catalogue (Prometheus, `parley_*`).

Counters and histograms here are per process; Prometheus sums them across the web and
worker processes. Gauges that describe the database (backlogs, staleness, open
conflicts) are not defined here: core.services.gauges computes them at scrape time from
the database with a short cache, so every process reports the same numbers.

Labels stay bounded: platform, outcome, mode, purpose, reason, format, surface. Never a
provider, booking or source id; per-provider views belong to the console.

ops/prometheus/ (recording rules, alerts) and ops/grafana/ (the dashboard) are written
against these names; tests/unit/test_metric_catalogue.py keeps the three in step.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# -- Feasibility (slot search) -------------------------------------------------------
FEASIBILITY_SECONDS = Histogram(
    "parley_feasibility_seconds",
    "Time to compute bookable slots for one request, by surface (api, page, proposal)",
    ["surface"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
FEASIBILITY_SLOTS = Histogram(
    "parley_feasibility_slots",
    "Slots returned by one slot search",
    ["surface"],
    buckets=(0, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000),
)
FEASIBILITY_TRUNCATED = Counter(
    "parley_feasibility_truncated_total",
    "Slot searches whose range the lead time or the booking window cut short",
    ["surface"],
)

# -- Holds ---------------------------------------------------------------------------
HOLDS_CREATED = Counter(
    "parley_holds_created_total", "Holds placed, by where (api, page)", ["source"]
)
HOLDS_CONVERTED = Counter("parley_holds_converted_total", "Holds turned into bookings")
HOLDS_EXPIRED = Counter("parley_holds_expired_total", "Holds that expired unused")
HOLDS_RELEASED = Counter("parley_holds_released_total", "Holds released before expiry")
HOLD_OVERLAPS = Counter(
    "parley_hold_overlap_refusals_total",
    "Hold requests refused because the time was taken (hold, booking or busy)",
    ["source"],
)

# -- Bookings ------------------------------------------------------------------------
BOOKINGS_CREATED = Counter(
    "parley_bookings_created_total",
    "Bookings made from a hold, by mode (instant: confirmed at once; request: waits for the host)",
    ["mode"],
)
BOOKING_ATTEMPTS = Counter(
    "parley_booking_attempts_total",
    "Attempts to book a held slot, by the mode the provider asks for (instant, request) and "
    "outcome (ok; downgraded: instant book paused by a stale calendar; refused: taken or expired)",
    ["mode", "outcome"],
)
BOOKINGS_CONFIRMED = Counter(
    "parley_bookings_confirmed_total", "Bookings confirmed, by mode (instant, request)", ["mode"]
)
BOOKINGS_CANCELLED = Counter("parley_bookings_cancelled_total", "Bookings cancelled")
BOOKINGS_DECLINED = Counter("parley_bookings_declined_total", "Requests to book declined")

# -- Proposals (request a new time) --------------------------------------------------
PROPOSALS = Counter(
    "parley_proposals_total",
    "New-time proposals, by what happened (created, approved, declined, expired)",
    ["event"],
)
RESCHEDULE_SECONDS = Histogram(
    "parley_reschedule_seconds",
    "Time from a proposal being made to its approval (time to reschedule)",
    buckets=(60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 172800, 604800),
)

# -- Imported calendars (ICS and CalDAV polling) -------------------------------------
ICS_POLLS = Counter(
    "parley_ics_polls_total",
    "Polls of imported calendars, by platform and outcome (ok, not_modified, error, held)",
    ["platform", "outcome"],
)
ICS_POLL_SECONDS = Histogram(
    "parley_ics_poll_seconds",
    "Duration of one poll of an imported calendar",
    ["platform"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
ICS_PAYLOAD_BYTES = Counter(
    "parley_ics_payload_bytes_total", "Bytes of calendar data downloaded", ["platform"]
)
POLL_PRESSURE = Gauge(
    "parley_poll_pressure",
    "Back-pressure of the poll queue: due sources / one run's batch (1 = keeping up, max 4);"
    " above 1 the shortest polling interval widens by this factor",
)
POLL_HOST_WAIT_SECONDS = Counter(
    "parley_poll_host_wait_seconds_total",
    "Time polls waited for their calendar host's politeness gap (per-host rate limit)",
)
ICS_EVENTS = Counter(
    "parley_ics_events_total",
    "Imported events changed by polls, by change (added, updated, removed)",
    ["change"],
)
CONFLICTS_DETECTED = Counter(
    "parley_conflicts_detected_total", "Overlapping reservations found across imported calendars"
)
# -- Feeds and links -----------------------------------------------------------------
FEED_DOWNLOADS = Counter(
    "parley_feed_downloads_total", "Calendar feed downloads, by format", ["format"]
)
FEED_TOKEN_REGENERATIONS = Counter(
    "parley_feed_token_regenerations_total", "Feed tokens issued or regenerated"
)
LINK_REJECTIONS = Counter(
    "parley_link_rejections_total",
    "Tokenized links refused, by purpose and reason (invalid, expired, used)",
    ["purpose", "reason"],
)

# -- Mail ----------------------------------------------------------------------------
BOUNCES = Counter("parley_mail_bounces_total", "Delivery status notifications (bounces) received")
