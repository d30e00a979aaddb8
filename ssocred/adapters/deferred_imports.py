"""Modules that keyring's dependencies import but a keyring read never uses, loaded on first use instead.

``jaraco.context`` (imported by every keyring backend) imports ``urllib.request`` (and with it
http.client, email and ssl) for a download helper, ``jaraco.functools`` imports ``more_itertools``
for helpers keyring does not call, and keyring imports ``importlib_metadata`` to find plugins,
which a remembered backend never looks for. Together they cost ``ssocred process`` without a
daemon more than twice the start-up of the interpreter. ``defer`` puts a
stand-in module in ``sys.modules`` that carries the real module's spec: the first other attribute
anyone reads from it imports the real module, which from then on is the one in ``sys.modules``,
so later imports get the real one.

Example: ``defer(READ_UNUSED)`` before ``import keyring``.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import types
from typing import Any

#: Imported by keyring and its dependencies at import time, unused by a read through a remembered backend.
READ_UNUSED = ("urllib.request", "importlib_metadata", "more_itertools")


class _Deferred(types.ModuleType):
    """Stands in for a module until someone reads an attribute of it."""

    def __getattr__(self, name: str) -> Any:
        return getattr(load(self), name)


def load(module: types.ModuleType) -> types.ModuleType:
    """The real module behind ``module`` (imported now if it is a stand-in): ``load(sys.modules["urllib.request"])``."""
    if not isinstance(module, _Deferred):
        return module
    if sys.modules.get(module.__name__) is module:
        del sys.modules[module.__name__]
    return importlib.import_module(module.__name__)


def defer(names: tuple[str, ...]) -> list[str]:
    """Stand-ins for those of ``names`` that are installed and not imported yet; the names deferred.

    Example: ``defer(("urllib.request",)) == ["urllib.request"]`` in a process that has not imported it.
    """
    deferred = []
    for name in names:
        if name in sys.modules:
            continue
        parent_name, _, child = name.rpartition(".")
        try:
            parent = importlib.import_module(parent_name) if parent_name else None
            path = getattr(parent, "__path__", None) if parent is not None else None
            spec = None if parent is not None and path is None else importlib.machinery.PathFinder.find_spec(name, path)
        except ImportError:
            continue
        if spec is None:
            continue  # not there (or not where a plain import finds it): its import fails as before
        stand_in = _Deferred(name)
        # What the import system and importlib.util.find_spec read from a module in sys.modules.
        stand_in.__spec__, stand_in.__loader__ = spec, spec.loader
        sys.modules[name] = stand_in
        if parent is not None:
            setattr(parent, child, stand_in)  # ``import a.b`` reads ``b`` from ``a``
        deferred.append(name)
    return deferred
