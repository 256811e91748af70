"""Structured logging: JSON lines when not on a TTY, readable text on one.

Business events go through core.events.record so each has one name (cal.hold.created…).
Never log secrets, tokens or message bodies: callers pass ids and counts.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def configure_logging(level: str = "info", json: bool | None = None) -> None:
    """Set up structlog and the stdlib root logger once per process."""
    use_json = (not sys.stderr.isatty()) if json is None else json
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr)
    if numeric <= logging.DEBUG:
        # Radicale's own debug lines (never headers or bodies: caldav_bridge.app turns those
        # off) help when a calendar app misbehaves.
        logging.getLogger("radicale").setLevel(logging.DEBUG)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
