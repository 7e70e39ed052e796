"""Where a limb point is: limb-local coordinates to DensePose surface charts and to image pixels.

Conventions (the canonical body frame and the limb shapes are in
:mod:`~dptrack_pipeline.synth.limbs`):

* **Limb frame**: origin at the limb's proximal joint, axis ``e_s = (cos a, sin a)`` along the
  limb (angle ``a`` in the canonical frame, radians, measured from ``+x`` towards ``+y``) and
  ``e_t = (-sin a, cos a)`` across it. A limb point with local coordinates ``(s, t)`` is at
  canonical ``o + s e_s + t e_t`` and at image pixel
  ``root + scale * diag(facing, 1) @ (o + s e_s + t e_t)``: one 2x3 affine per limb and time
  (:func:`~dptrack_pipeline.synth.motion.limb_affines`), applied with :func:`apply_affine` and
  inverted with :func:`invert_affine`. Image coordinates follow :mod:`dptrack_pipeline.structures`
  (pixel centres on integers, ``x`` right, ``y`` down).
* **Surface charts** (DensePose ``I, U, V``): ``U = (s - s0) / (s1 - s0)`` runs along the limb.
  The across coordinate is ``n = t / h(s)`` for quads and ``n = 2 t / w0`` for ellipses, in
  ``[-1, 1]``. A limb with two DensePose patches (e.g. 7 and 9, upper leg right) is cut along
  its axis: the half ``n < 0`` is the first patch with ``V = n + 1`` and the half ``n >= 0`` the
  second with ``V = n``; a one-patch limb (hands, feet) has ``V = (n + 1) / 2``. ``U, V`` lie in
  ``[0, 1]``. In the canonical frame the ``n >= 0`` half of the torso faces forward, so patch 2
  is the front of the torso and patch 1 its back, as in DensePose. :func:`local_to_chart` and
  :func:`chart_to_local` are exact inverses on the limb, which is what makes the truth of
  :mod:`dptrack_pipeline.synth.truth` exact.
"""

from __future__ import annotations

import numpy as np

from dptrack_pipeline.synth.limbs import ELLIPSE, LimbGeometry


def invert_affine(affine: np.ndarray) -> np.ndarray:
    """Inverse of a ``(2, 3)`` affine (image pixels -> limb-local ``(s, t)``)."""
    linear = np.linalg.inv(affine[:, :2])
    return np.concatenate([linear, -linear @ affine[:, 2:3]], axis=1)


def local_to_chart(
    geometry: LimbGeometry, num_patches: int, s: np.ndarray, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Limb-local coordinates to the surface chart.

    Args:
        geometry: the limb's geometry.
        num_patches: 1 or 2 (patches of the limb).
        s, t: ``(N,)`` local coordinates (canonical units).

    Returns:
        ``inside`` (N,) bool (the point lies on the limb), ``slot`` (N,) int64 (0 = first patch,
        1 = second), ``U`` and ``V`` (N,) float64 in ``[0, 1]`` (meaningful where ``inside``).
    """
    s = np.asarray(s, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    u = (s - geometry.s0) / (geometry.s1 - geometry.s0)
    if geometry.shape == ELLIPSE:
        half = geometry.w0 / 2.0
        inside = (2.0 * u - 1.0) ** 2 + (t / half) ** 2 <= 1.0
        n = t / half
    else:
        half = geometry.half_width(s)
        inside = (u >= 0.0) & (u <= 1.0) & (np.abs(t) <= half)
        n = t / np.maximum(half, 1e-9)
    n = np.clip(n, -1.0, 1.0)
    u = np.clip(u, 0.0, 1.0)
    if num_patches == 1:
        slot = np.zeros(s.shape, dtype=np.int64)
        v = (n + 1.0) / 2.0
    else:
        slot = (n >= 0.0).astype(np.int64)
        v = np.where(slot == 0, n + 1.0, n)
    return inside, slot, u, v


def chart_to_local(
    geometry: LimbGeometry, num_patches: int, slot: np.ndarray, u: np.ndarray, v: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`local_to_chart`: ``(slot, U, V)`` to limb-local ``(s, t)`` (N,) each."""
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    s = geometry.s0 + u * (geometry.s1 - geometry.s0)
    if num_patches == 1:
        n = 2.0 * v - 1.0
    else:
        n = np.where(np.asarray(slot) == 0, v - 1.0, v)
    return s, n * geometry.half_width(s)


def apply_affine(affine: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Map ``(N,)`` coordinates ``a, b`` through a ``(2, 3)`` affine: ``(N, 2)`` float64."""
    x = affine[0, 0] * a + affine[0, 1] * b + affine[0, 2]
    y = affine[1, 0] * a + affine[1, 1] * b + affine[1, 2]
    return np.stack([x, y], axis=-1)
