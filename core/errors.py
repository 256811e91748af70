"""Errors shared across Parley; each package keeps its own module for the rest."""

from __future__ import annotations


class ParleyError(Exception):
    """Base of every error Parley raises on purpose."""


class ConfigError(ParleyError):
    """Raised at start-up when a setting has a bad value; the message is one line."""
