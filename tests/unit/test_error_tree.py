"""The error tree: every exception Parley defines lives in its package's errors.py, under
core.errors.ParleyError, and says in its first docstring line when it is raised."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from core.errors import ParleyError

PACKAGES = ("core", "mailagent", "caldav_bridge", "web", "parley")


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        root = importlib.import_module(package)
        names.append(package)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            names.append(info.name)
    return names


def _exceptions() -> list[type[BaseException]]:
    found = []
    for name in _modules():
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(value, BaseException)
                and value.__module__ == name
                and not value.__name__.startswith("_")  # private control flow, never escapes
            ):
                found.append(value)
    return found


EXCEPTIONS = _exceptions()


def test_the_tree_is_found() -> None:
    assert len(EXCEPTIONS) > 50


@pytest.mark.parametrize("error", EXCEPTIONS, ids=lambda e: f"{e.__module__}.{e.__name__}")
def test_every_error_lives_in_an_errors_module_under_the_root(error: type[BaseException]) -> None:
    assert error.__module__ == "core.errors" or error.__module__.endswith(".errors")
    assert issubclass(error, ParleyError)
    first = (error.__doc__ or "").strip().splitlines()[0]
    assert first.startswith(("Raised when", "Raised at", "Base")), first
