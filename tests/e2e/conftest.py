"""Fixtures shared by the end-to-end tests."""

from tests.e2e.browser import browser

__all__ = ["browser"]
