"""Estimators from other packages: the ``dptrack.estimators`` entry-point group.

A distribution registers an estimator in its ``pyproject.toml``::

    [project.entry-points."dptrack.estimators"]
    raft = "my_pkg.raft:RaftEstimator"

The entry point's name is the estimator's (set as the class's ``name``; do not also use
:func:`~dptrack_pipeline.flow.registry.register_estimator`). It loads to a concrete
:class:`~dptrack_pipeline.flow.registry.FlowEstimator` subclass, not a factory:
:func:`~dptrack_pipeline.flow.registry.create_estimator` instantiates it with the options, and
Beam pickles the instance by class reference, so workers need the package installed. The subclass
sets ``default_options``, ``preferred_batch_size``, ``transient_attributes``, implements
``_setup`` (load the weights) and ``estimate_batch``, and may override ``_validate_options``,
``check_runtime`` (a GPU estimator raises ``RuntimeError`` when its device is unusable; fail in
``_setup`` too, for remote workers) and ``provenance`` (recorded with ``params()`` in
``dataset_info.json``).

Entry points are listed once per process, on the first lookup, never at import or ``--help``; a
plugin's module is imported only when its name is requested (so import torch in ``_setup``).
Built-in names win, with an :class:`EstimatorPluginWarning`. A plugin that fails to import, is not
a concrete subclass of its own or has its name claimed twice is still listed
(:func:`broken_estimators` says why) and raises :class:`EstimatorPluginError`, naming the
distribution and entry point, when requested.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import threading
import warnings
from dataclasses import dataclass
from typing import Any

from dptrack_pipeline.flow.registry import _REGISTRY, FlowEstimator

ENTRY_POINT_GROUP = "dptrack.estimators"
"""The entry-point group through which other distributions register estimators."""


class EstimatorPluginError(ValueError):
    """A plugin estimator that cannot be used; the message names its distribution, entry point."""


class EstimatorPluginWarning(UserWarning):
    """A plugin estimator ignored because a built-in estimator has its name."""


@dataclass
class _Plugin:
    """A discovered entry point; once requested, its class or why it cannot be used."""

    entry_point: importlib.metadata.EntryPoint
    origin: str  # "entry point 'raft' = 'my_pkg.raft:RaftEstimator' of distribution 'my-pkg'"
    cls: type[FlowEstimator] | None = None
    error: str | None = None


_PLUGINS: dict[str, _Plugin] | None = None  # by name; None until the first lookup
_PLUGINS_LOCK = threading.RLock()


def _origin(entry_point: importlib.metadata.EntryPoint) -> str:
    dist = getattr(getattr(entry_point, "dist", None), "name", None) or "unknown"
    return f"entry point {entry_point.name!r} = {entry_point.value!r} of distribution {dist!r}"


def discovered() -> dict[str, _Plugin]:
    """Plugin estimators by name, discovered on the first call (once per process) without
    importing them. A built-in name is skipped with a warning; a name claimed twice is kept,
    unusable."""
    global _PLUGINS
    with _PLUGINS_LOCK:
        if _PLUGINS is None:
            claims: dict[str, list[importlib.metadata.EntryPoint]] = {}
            for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                claims.setdefault(entry_point.name, []).append(entry_point)
            _PLUGINS = {}
            for name, claimants in claims.items():
                origins = "; ".join(_origin(entry_point) for entry_point in claimants)
                builtin = _REGISTRY.get(name)
                if builtin is not None:
                    message = f"ignoring flow estimator plugin ({origins}): {name!r} is the "
                    message += f"built-in estimator {builtin.__module__}.{builtin.__qualname__}"
                    warnings.warn(message, EstimatorPluginWarning, stacklevel=3)
                    continue
                plugin = _PLUGINS[name] = _Plugin(claimants[0], _origin(claimants[0]))
                if len(claimants) > 1:
                    plugin.error = f"flow estimator {name!r} is claimed by {len(claimants)} "
                    plugin.error += f"plugins ({origins}); uninstall all but one"
        return _PLUGINS


def load(plugin: _Plugin) -> type[FlowEstimator]:
    """The plugin's class, imported on the first request (the outcome is kept).

    Raises:
        EstimatorPluginError: it fails to import, is not a concrete ``FlowEstimator`` subclass
            of its own, or its name is claimed twice.
    """
    with _PLUGINS_LOCK:
        if plugin.cls is None and plugin.error is None:
            name = plugin.entry_point.name
            where = f"flow estimator plugin {name!r} ({plugin.origin})"
            try:
                obj = plugin.entry_point.load()
            except Exception as error:  # third-party code: report it, do not crash
                plugin.error = f"{where} failed to load: {type(error).__name__}: {error}"
            else:
                refusal = _refusal(obj)
                if refusal is None:
                    obj.name = name
                    plugin.cls = obj
                else:
                    plugin.error = f"{where}: {refusal}"
        if plugin.cls is None:
            raise EstimatorPluginError(plugin.error)
        return plugin.cls


def _refusal(obj: Any) -> str | None:
    """Why ``obj`` cannot be a plugin estimator's class, or ``None``."""
    if not (isinstance(obj, type) and issubclass(obj, FlowEstimator)):
        return f"loads to {obj!r}, which is not a FlowEstimator subclass"
    if inspect.isabstract(obj):
        missing = ", ".join(sorted(obj.__abstractmethods__))
        return f"{obj.__qualname__} is abstract; implement {missing}"
    owners = [name for name, cls in _REGISTRY.items() if cls is obj]
    owners += [name for name, plugin in (_PLUGINS or {}).items() if plugin.cls is obj]
    if owners:
        return f"{obj.__qualname__} is already the estimator {owners[0]!r}; subclass it"
    return None


def broken_estimators() -> dict[str, str]:
    """The plugin estimators that cannot be used, with the reason (imports every plugin)."""
    broken = {}
    for name, plugin in sorted(discovered().items()):
        try:
            load(plugin)
        except EstimatorPluginError as error:
            broken[name] = str(error)
    return broken
