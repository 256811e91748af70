"""Prometheus metrics of the organizer mailbox's outbound side: delivery status and latency.

Served by the web app's /metrics with everything else in the default registry. Inbound
counters are core's: stored by channel (core.services.inbound), settled by outcome
(core.services.mail_in); the outbox backlog is a database gauge (core.services.gauges).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

OUTBOUND = Counter(
    "parley_mail_outbound_total", "Outbound delivery attempts, by status", ["status"]
)
DELIVERY_LATENCY = Histogram(
    "parley_mail_delivery_latency_seconds",
    "Seconds from queueing an outbound message to the relay (or Maildir) accepting it",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400),
)
