"""Which propagated points are kept: the checks of a ``run``, their presets and measured defaults.

A point moved from the labelled frame ``T`` to a target ``t`` is kept when it passes every check
that is on (:class:`Checks`); otherwise it is dropped and counted under the first check it fails,
in this order:

1. ``outside``: it lands outside the target frame or box (always on);
2. ``fb``: its forward-backward error exceeds ``fb_threshold`` px (always on; Slim DensePose);
3. ``photo``: the ZNCC of its neighbourhoods in ``T`` and ``t``
   (:func:`~dptrack_pipeline.flow.quality.zncc`) is below ``photometric`` (off when ``None``);
4. ``chain``: moved along two legs through a neighbouring frame it lands more than ``chain`` px
   from where the direct flow puts it (:func:`~dptrack_pipeline.flow.quality.chain_error`; off
   when ``None``). The neighbour of a target ``T + k`` is ``T + k - sign(k)`` for ``|k| >= 2`` and
   ``T + 2 sign(k)`` for ``|k| = 1`` (so every target has one when ``K >= 2``); the second leg is
   the one-step flow between the two targets, which the plan adds (each computed once). A target
   without a neighbour inside the video and ``T ± K`` is not chain-checked.

**Presets.** ``paper`` is Slim DensePose's recipe exactly: the 5 px forward-backward check and
nothing else (what every ``run`` did before these checks existed; the same rows, points and
positions). ``measured`` (the default) is, per estimator, the setting that
``benchmarks/sweep_checks.py`` found to minimise the wrong-label rate (kept points farther than
3 px from the truth) pooled over the six shared MPI-Sintel pairs while keeping recall at least
0.8x that of the 5 px check alone (:data:`MEASURED`); estimators it has not measured (FlowNet2,
plugins) get ``paper``. Flags given on the command line override the preset's values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

PHOTOMETRIC_METRICS = ("zncc",)
"""Photometric scores a check can use (:mod:`dptrack_pipeline.flow.quality`)."""

PRESET_PAPER = "paper"
PRESET_MEASURED = "measured"
PRESETS = (PRESET_MEASURED, PRESET_PAPER)
DEFAULT_PRESET = PRESET_MEASURED


@dataclass(frozen=True)
class Checks:
    """The checks a propagated point must pass (module docstring).

    Attributes:
        fb_threshold: forward-backward threshold in pixels (> 0).
        photometric: minimal ZNCC in ``[-1, 1]``, or ``None`` (off).
        chain: maximal chain error in pixels (> 0), or ``None`` (off).
    """

    fb_threshold: float = 5.0
    photometric: float | None = None
    chain: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.fb_threshold) and self.fb_threshold > 0):
            raise ValueError(f"fb_threshold must be finite and > 0 px, not {self.fb_threshold}")
        if self.photometric is not None and not -1.0 <= self.photometric <= 1.0:
            raise ValueError(f"a ZNCC threshold must be in [-1, 1], not {self.photometric}")
        if self.chain is not None and not (math.isfinite(self.chain) and self.chain > 0):
            raise ValueError(f"chain threshold must be a finite number > 0 px, got {self.chain}")

    @property
    def fb_only(self) -> Checks:
        """The forward-backward part alone (what boxes, masks and crop flows are checked with)."""
        return Checks(fb_threshold=self.fb_threshold)

    def to_dict(self) -> dict[str, Any]:
        """As recorded in ``dataset_info.json``."""
        return {
            "fb_threshold": float(self.fb_threshold),
            "photometric": None
            if self.photometric is None
            else {"metric": "zncc", "threshold": float(self.photometric)},
            "chain": None if self.chain is None else float(self.chain),
        }


PAPER = Checks(fb_threshold=5.0)

MEASURED: dict[str, Checks] = {
    "dis": Checks(fb_threshold=1.0, photometric=0.0, chain=2.0),
    "farneback": Checks(fb_threshold=4.0, photometric=0.2),
}
"""The ``measured`` preset per estimator (``benchmarks/sweep_checks.py``, README "Label
quality")."""


def preset_checks(preset: str, estimator: str) -> Checks:
    """The checks of a preset for an estimator (module docstring).

    Raises:
        ValueError: an unknown preset.
    """
    if preset == PRESET_PAPER:
        return PAPER
    if preset == PRESET_MEASURED:
        return MEASURED.get(estimator, PAPER)
    raise ValueError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")


def parse_photometric(text: str) -> float | None:
    """``"zncc:0.7"`` -> ``0.7``; ``"none"`` or ``"off"`` -> ``None``.

    Raises:
        ValueError: another metric, or a threshold that is not a number in ``[-1, 1]``.
    """
    if text.strip().lower() in ("none", "off"):
        return None
    metric, sep, value = text.partition(":")
    if not sep or metric.strip().lower() not in PHOTOMETRIC_METRICS:
        raise ValueError(
            f"expected METRIC:THRESHOLD with METRIC in {PHOTOMETRIC_METRICS} (e.g. zncc:0.7) "
            f"or 'none', got {text!r}"
        )
    try:
        threshold = float(value)
    except ValueError:
        raise ValueError(f"photometric threshold {value!r} is not a number") from None
    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"a ZNCC threshold must be in [-1, 1], got {threshold}")
    return threshold


def resolve_checks(
    preset: str,
    estimator: str,
    *,
    fb_threshold: float | None = None,
    photometric: str | None = None,
    chain: float | str | None = None,
) -> Checks:
    """The preset's checks for ``estimator`` with the given overrides (``None``: keep the
    preset's; ``photometric="none"``, ``chain="none"``: switch the check off)."""
    checks = preset_checks(preset, estimator)
    if fb_threshold is not None:
        checks = replace(checks, fb_threshold=float(fb_threshold))
    if photometric is not None:
        checks = replace(checks, photometric=parse_photometric(photometric))
    if chain is not None:
        off = isinstance(chain, str) and chain.strip().lower() in ("none", "off")
        try:
            checks = replace(checks, chain=None if off else float(chain))
        except ValueError:
            raise ValueError(f"chain threshold {chain!r} is not a number of px or 'none'") from None
    return checks
