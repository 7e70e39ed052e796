"""Optical-flow estimators registered by name, and the interface they share.

Design:

* **The batch is the unit of work.** :meth:`FlowEstimator.estimate_batch` takes a sequence of
  image pairs and returns one flow per pair. OpenCV estimators process one pair at a time
  (``preferred_batch_size = 1``); a GPU network (FlowNet2) stacks the pairs into one tensor, so the
  Beam layer groups pairs into batches of ``preferred_batch_size`` and never needs to know which
  estimator it drives.
* **Options are plain, JSON-serialisable values** declared per estimator in ``default_options``.
  :meth:`FlowEstimator.params` returns the complete, resolved set, which the dataset manifest
  records so a dataset says exactly how its flow was computed.
* **Heavy state is loaded lazily** in :meth:`FlowEstimator.setup` (Beam calls it once per worker
  from ``DoFn.setup``; ``estimate_batch`` also calls it, so direct use needs no ceremony). It is
  idempotent. Attributes named in ``transient_attributes`` (an OpenCV object, a torch model) are
  dropped when the estimator is pickled, so Beam can ship a configured but unloaded estimator to
  its workers; the copy loads them again on its own ``setup``.
* **Conventions at the boundary.** Images are ``(H, W, 3)`` uint8 RGB; a pair's two images have the
  same size (pairs in one batch may differ in size). A flow is ``(H, W, 2)`` float32 in pixels,
  channel 0 = x: ``F[r, c]`` is the displacement of the pixel centre ``(x, y) = (c, r)`` from the
  first image to the second. :meth:`FlowEstimator.check_pairs` and
  :meth:`FlowEstimator.check_flows` enforce this with errors that say what was expected and what
  arrived; every implementation of ``estimate_batch`` calls them.
* **Plugins register through entry points** of the group ``dptrack.estimators``
  (:mod:`dptrack_pipeline.flow.plugins` says how), so other packages add estimators without
  forking dptrack; :func:`available_estimators` and :func:`create_estimator` see them.

Example:
    >>> from dptrack_pipeline.flow import create_estimator
    >>> estimator = create_estimator("dis", preset="fast")
    >>> estimator.params()
    {'preset': 'fast', 'threads': None}
"""

from __future__ import annotations

import abc
import copy
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

import numpy as np

ImagePair = tuple[np.ndarray, np.ndarray]

_REGISTRY: dict[str, type[FlowEstimator]] = {}
"""Built-in estimators and those registered with :func:`register_estimator`."""

_E = TypeVar("_E", bound="type[FlowEstimator]")


class FlowEstimator(abc.ABC):
    """Base class of every optical-flow estimator.

    Subclasses set ``name`` (via :func:`register_estimator`), ``default_options`` (every accepted
    option with its default), optionally ``transient_attributes`` and ``preferred_batch_size``, and
    implement :meth:`_setup` and :meth:`estimate_batch`.

    Args:
        **options: values overriding ``default_options``; unknown names raise ``TypeError``.
    """

    name: ClassVar[str] = ""
    default_options: ClassVar[Mapping[str, Any]] = {}
    transient_attributes: ClassVar[tuple[str, ...]] = ()
    preferred_batch_size: int = 1

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.default_options))
        if unknown:
            raise TypeError(
                f"flow estimator {self.name!r} got unknown option(s) {unknown}; "
                f"accepted options: {sorted(self.default_options)}"
            )
        self._options: dict[str, Any] = {**copy.deepcopy(dict(self.default_options)), **options}
        try:
            json.dumps(self._options)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"options of flow estimator {self.name!r} must be JSON-serialisable: {error}"
            ) from None
        self._validate_options(self._options)
        self._ready = False

    # -- options -----------------------------------------------------------------------------

    def _validate_options(self, options: dict[str, Any]) -> None:
        """Check option values; raise ``ValueError``/``TypeError`` naming the option. Override."""
        return None

    @property
    def options(self) -> dict[str, Any]:
        """A copy of the resolved options."""
        return dict(self._options)

    def params(self) -> dict[str, Any]:
        """The resolved options as a JSON-serialisable dict (recorded in the dataset manifest)."""
        return copy.deepcopy(self._options)

    # -- lifecycle ---------------------------------------------------------------------------

    def setup(self) -> None:
        """Load heavy state (OpenCV objects, model weights). Idempotent; cheap when done."""
        if not self._ready:
            self._setup()
            self._ready = True

    def _setup(self) -> None:
        """Create the transient state. Called once by :meth:`setup`. Override."""
        return None

    def provenance(self) -> dict[str, Any]:
        """Facts about the estimator's inputs that its options do not pin (e.g. a weights file's
        checksum), recorded in ``dataset_info.json`` under ``extra.estimator_provenance``.
        Computed by the launcher. Override; the default has none."""
        return {}

    def check_runtime(self) -> None:
        """Raise ``RuntimeError`` with the reason if this process cannot run the estimator.

        Cheap (loads nothing). The launcher calls it when the pipeline runs in this process, so a
        missing GPU is reported before any work starts; remote workers meet the same error in
        :meth:`setup`. Override; the default accepts.
        """
        return None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for attribute in self.transient_attributes:
            state[attribute] = None
        state["_ready"] = False
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value!r}" for key, value in self._options.items())
        return f"{type(self).__name__}({args})"

    # -- estimation --------------------------------------------------------------------------

    @abc.abstractmethod
    def estimate_batch(self, pairs: Sequence[ImagePair]) -> list[np.ndarray]:
        """Estimate the flow of each pair.

        Args:
            pairs: ``(first, second)`` images, each ``(H, W, 3)`` uint8 RGB, both of a pair the
                same size.

        Returns:
            One ``(H, W, 2)`` float32 flow per pair, in pixels, channel 0 = x, ``F[r, c]`` the
            displacement of pixel centre ``(c, r)`` from the first image to the second.

        Implementations call :meth:`check_pairs` on the input and :meth:`check_flows` on the
        output, and call :meth:`setup` first.
        """

    def estimate(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Flow of a single pair; see :meth:`estimate_batch` for the conventions."""
        return self.estimate_batch([(first, second)])[0]

    # -- boundary checks ---------------------------------------------------------------------

    @staticmethod
    def check_pairs(pairs: Sequence[ImagePair]) -> list[ImagePair]:
        """Validate a batch of image pairs and return it as a list.

        Raises:
            TypeError: when ``pairs`` is not a sequence of 2-tuples of arrays.
            ValueError: on a wrong shape or dtype, or a pair of different sizes.
        """
        if isinstance(pairs, np.ndarray) or not isinstance(pairs, Sequence):
            raise TypeError(
                f"expected a sequence of (first, second) image pairs, got {type(pairs).__name__}"
            )
        checked: list[ImagePair] = []
        for index, pair in enumerate(pairs):
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"pair {index}: expected a (first, second) tuple, got {pair!r:.80}")
            first, second = pair
            for label, image in (("first", first), ("second", second)):
                if not isinstance(image, np.ndarray):
                    raise TypeError(
                        f"pair {index}: {label} image must be a numpy array, "
                        f"got {type(image).__name__}"
                    )
                if image.ndim != 3 or image.shape[2] != 3:
                    raise ValueError(
                        f"pair {index}: {label} image must have shape (H, W, 3) RGB, "
                        f"got {image.shape}"
                    )
                if image.dtype != np.uint8:
                    raise ValueError(
                        f"pair {index}: {label} image must be uint8, got {image.dtype}"
                    )
                if image.shape[0] < 1 or image.shape[1] < 1:
                    raise ValueError(f"pair {index}: {label} image is empty: {image.shape}")
            if first.shape != second.shape:
                raise ValueError(
                    f"pair {index}: both images must have the same size, "
                    f"got {first.shape} and {second.shape}"
                )
            checked.append((first, second))
        return checked

    @staticmethod
    def check_flows(flows: Sequence[np.ndarray], pairs: Sequence[ImagePair]) -> list[np.ndarray]:
        """Validate estimator output against its input pairs; return float32 C-contiguous flows.

        Raises:
            ValueError: on a wrong count or shape (a bug in the estimator).
        """
        if len(flows) != len(pairs):
            raise ValueError(f"expected {len(pairs)} flows (one per pair), got {len(flows)}")
        checked = []
        for index, (flow, (first, _)) in enumerate(zip(flows, pairs, strict=True)):
            expected = (first.shape[0], first.shape[1], 2)
            if flow.shape != expected:
                raise ValueError(f"flow {index}: expected shape {expected}, got {flow.shape}")
            checked.append(np.ascontiguousarray(flow, dtype=np.float32))
        return checked


def register_estimator(name: str) -> Callable[[_E], _E]:
    """Class decorator registering a :class:`FlowEstimator` subclass under ``name``.

    Raises:
        ValueError: when ``name`` is already taken by another class.
        TypeError: when the class is not a ``FlowEstimator``.
    """

    def decorator(cls: _E) -> _E:
        if not (isinstance(cls, type) and issubclass(cls, FlowEstimator)):
            raise TypeError(f"{cls!r} is not a FlowEstimator subclass")
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not cls:
            raise ValueError(f"flow estimator name {name!r} is already registered to {existing}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def available_estimators() -> list[str]:
    """Sorted names of the estimators: built-in, registered and plugins (a broken plugin too: it
    fails when requested)."""
    from dptrack_pipeline.flow import plugins

    return sorted(set(_REGISTRY) | set(plugins.discovered()))


def create_estimator(name: str, **options: Any) -> FlowEstimator:
    """Instantiate the estimator ``name`` (not yet set up): a built-in or registered one, else a
    plugin (imported on first request).

    Raises:
        ValueError: for an unknown name (the message lists the available ones).
        EstimatorPluginError: (a ``ValueError``) for a plugin that cannot be used.
        TypeError: for an unknown option (the message names it and the accepted ones).
    """
    from dptrack_pipeline.flow import plugins

    cls = _REGISTRY.get(name)
    if cls is None:
        plugin = plugins.discovered().get(name)
        if plugin is None:
            raise ValueError(
                f"unknown flow estimator {name!r}; available: {available_estimators()}"
            )
        cls = plugins.load(plugin)
    return cls(**options)
