"""Scenes of textured synthetic people and their z-buffered rasterisation with exact labels.

A :class:`Scene` is one video: a few :class:`~dptrack_pipeline.synth.motion.PersonMotion`, one
texture per person and surface patch, and a textured background plane that translates. Every
colour is a deterministic function of the surface point: a body pixel's colour is a function of
``(person, patch, U, V)`` and a background pixel's colour a function of its position on the
background plane. A surface point therefore looks the same in every frame, which is what lets a
frame be reproduced from another one by warping with the exact flow.

Why a hand-written rasteriser: the labels must be *exact* (DensePose ``I, U, V`` and the person at
every pixel centre, the same analytic charts the truth flow uses), and the scene is 2D layered
shapes, not a mesh. Each limb is drawn by inverse-mapping the pixel centres of its bounding
rectangle into its local frame (one affine per limb and frame), testing the analytic shape and
the z-buffer, all vectorised with numpy (no per-pixel Python loop). Sampling is at pixel centres
with no anti-aliasing, so every label belongs to exactly one surface point.

Textures are sums of sinusoids of random orientation: on bodies a saturated colour per patch with
wavelengths of 4-16 pixels (dense, trackable structure for optical flow at 320x240); on the
background smooth long-wavelength colour noise, faint stripes and 18 finer waves (5-30 px) whose
sum does not repeat over the frame, so that flow on it has no periodic ambiguity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dptrack_pipeline.structures import NUM_SURFACE_PARTS
from dptrack_pipeline.synth.charts import apply_affine, invert_affine, local_to_chart
from dptrack_pipeline.synth.limbs import LIMBS
from dptrack_pipeline.synth.motion import PersonMotion, limb_affines, random_people

BACKGROUND_DEPTH = 100.0
"""Depth written for background pixels (people are at 1..N + 0.13)."""

BODY_WAVES = 8
BACKGROUND_WAVES = 24


@dataclass(frozen=True, eq=False)
class Texture:
    """Sum-of-sinusoids texture: ``colour = base + sum_k amp[k] * sin(2 pi (f[k] . p) + phase[k])``.

    For a body patch ``p = (U, V)`` and ``f`` is in cycles per chart unit; for the background
    ``p`` is the position on the background plane in pixels and ``f`` in cycles per pixel.
    Shapes: ``base (3,)``, ``freq (K, 2)``, ``phase (K,)``, ``amp (K, 3)`` (RGB, 0..255 scale).
    """

    base: np.ndarray
    freq: np.ndarray
    phase: np.ndarray
    amp: np.ndarray

    def colour(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Colours at ``(N,)`` coordinates ``a, b``: ``(N, 3)`` float64, not clipped."""
        angle = np.multiply.outer(a, 2.0 * np.pi * self.freq[:, 0])
        angle += np.multiply.outer(b, 2.0 * np.pi * self.freq[:, 1])
        angle += self.phase
        return np.sin(angle, out=angle) @ self.amp + self.base

    def colour_grid(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Colours on the grid ``a (W,) x b (H,)``: ``(H, W, 3)`` float64, not clipped.

        Uses ``sin(x + y) = sin x cos y + cos x sin y``, which turns the sum of waves into one
        ``(H, 2K) @ (2K, W)`` matrix product per channel.
        """
        along_a = 2.0 * np.pi * np.multiply.outer(a, self.freq[:, 0]) + self.phase  # (W, K)
        along_b = 2.0 * np.pi * np.multiply.outer(b, self.freq[:, 1])  # (H, K)
        left = np.concatenate([np.cos(along_b), np.sin(along_b)], axis=1)  # (H, 2K)
        right = np.concatenate([np.sin(along_a), np.cos(along_a)], axis=1).T  # (2K, W)
        out = np.empty((b.shape[0], a.shape[0], 3), dtype=np.float64)
        for channel in range(3):
            weights = np.concatenate([self.amp[:, channel], self.amp[:, channel]])
            # einsum rather than @: no BLAS thread pool for a product this small.
            out[:, :, channel] = np.einsum("hk,kw->hw", left, weights[:, None] * right)
            out[:, :, channel] += self.base[channel]
        return out


@dataclass(frozen=True, eq=False)
class BackgroundMotion:
    """Translation of the background plane: ``offset(t) = velocity * t + wobble * sin(omega * t +
    phase)`` pixels (``(2,)`` arrays, x then y). Image pixel ``p`` at time ``t`` shows plane point
    ``p - offset(t)``."""

    velocity: np.ndarray
    wobble: np.ndarray
    omega: float
    phase: float

    def offset(self, t: float) -> np.ndarray:
        return self.velocity * t + self.wobble * np.sin(self.omega * t + self.phase)


@dataclass(frozen=True, eq=False)
class Scene:
    """One synthetic video: image size, frame count, people, their textures and the background.

    ``textures[i][patch]`` is the texture of surface patch ``patch`` (1..24) of ``people[i]``
    (entry 0 unused).
    """

    width: int
    height: int
    frames: int
    people: tuple[PersonMotion, ...]
    textures: tuple[tuple[Texture | None, ...], ...]
    background: Texture
    background_motion: BackgroundMotion


@dataclass(frozen=True, eq=False)
class RenderedFrame:
    """One rendered frame and its exact per-pixel labels (all ``(H, W)`` unless stated).

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        part: uint8 DensePose surface patch ``I`` (1..24), 0 on the background.
        u, v: float32 chart coordinates in ``[0, 1]``, 0 on the background.
        person: int16 track id of the person seen, -1 on the background.
        depth: float32 depth of the surface seen (smaller = nearer), :data:`BACKGROUND_DEPTH`
            on the background.
    """

    image: np.ndarray
    part: np.ndarray
    u: np.ndarray
    v: np.ndarray
    person: np.ndarray
    depth: np.ndarray


def _random_texture(
    rng: np.random.Generator, waves: int, size_a: float, size_b: float, wavelengths: tuple
) -> Texture:
    """A body texture over a chart whose axes span ``size_a`` and ``size_b`` pixels.

    A saturated base colour (random hue) so parts stand apart, plus ``waves`` sinusoids whose
    wavelengths, measured in pixels on the body at its base scale, lie in ``wavelengths``.
    """
    hue = rng.uniform(0.0, 1.0)
    base = 130.0 + 70.0 * np.cos(2.0 * np.pi * (hue - np.array([0.0, 1.0, 2.0]) / 3.0))
    wavelength = rng.uniform(*wavelengths, size=waves)
    angle = rng.uniform(0.0, np.pi, size=waves)
    freq = np.stack(
        [size_a / wavelength * np.cos(angle), size_b / wavelength * np.sin(angle)], axis=1
    )
    phase = rng.uniform(0.0, 2.0 * np.pi, size=waves)
    amp = rng.uniform(8.0, 22.0, size=(waves, 1)) * rng.uniform(0.6, 1.0, size=(waves, 3))
    amp *= rng.choice([-1.0, 1.0], size=(waves, 3))
    return Texture(base, freq, phase, amp)


def _background_texture(rng: np.random.Generator) -> Texture:
    """Smooth colour noise (long waves), faint stripes and a fine non-periodic-looking texture
    (many waves of random orientation and wavelength), so that flow on it is well posed."""
    n_long, n_fine = 5, BACKGROUND_WAVES - 6
    wavelength = np.concatenate(
        [
            rng.uniform(60.0, 200.0, size=n_long),
            rng.uniform(16.0, 28.0, size=1),
            rng.uniform(5.0, 30.0, size=n_fine),
        ]
    )
    angle = rng.uniform(0.0, 2.0 * np.pi, size=BACKGROUND_WAVES)
    freq = np.stack([np.cos(angle), np.sin(angle)], axis=1) / wavelength[:, None]
    phase = rng.uniform(0.0, 2.0 * np.pi, size=BACKGROUND_WAVES)
    amp = np.concatenate(
        [
            rng.uniform(8.0, 28.0, size=(n_long, 3)),
            np.full((1, 3), rng.uniform(8.0, 14.0)),
            rng.uniform(3.0, 8.0, size=(n_fine, 1)) * rng.uniform(0.7, 1.0, size=(n_fine, 3)),
        ]
    ) * rng.choice([-1.0, 1.0], size=(BACKGROUND_WAVES, 3))
    return Texture(rng.uniform(100.0, 150.0, size=3), freq, phase, amp)


def make_scene(
    seed: int,
    video_index: int,
    *,
    width: int = 320,
    height: int = 240,
    frames: int = 24,
    people: int = 2,
) -> Scene:
    """Draw one video's scene, deterministically from ``(seed, video_index)``.

    Args:
        seed: dataset seed.
        video_index: 0-based video number within the dataset.
        width, height: frame size in pixels.
        frames: number of frames (the motion is defined for any real ``t`` anyway).
        people: number of people.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(video_index), 7919]))
    persons = random_people(rng, people, width, height, frames)
    textures = []
    for person in persons:
        per_patch: list[Texture | None] = [None] * (NUM_SURFACE_PARTS + 1)
        for limb in LIMBS:
            geometry = person.geometry(limb.kind)
            along = (geometry.s1 - geometry.s0) * person.scale0
            across = (
                geometry.max_half_width() * person.scale0 * (2 if len(limb.patches) == 1 else 1)
            )
            for patch in limb.patches:
                per_patch[patch] = _random_texture(rng, BODY_WAVES, along, across, (4.0, 16.0))
        textures.append(tuple(per_patch))
    speed = rng.uniform(0.5, 2.0) * height / 240.0
    direction = rng.uniform(0.0, 2.0 * np.pi)
    motion = BackgroundMotion(
        velocity=speed * np.array([np.cos(direction), np.sin(direction)]),
        wobble=rng.uniform(0.0, 1.5, size=2),
        omega=float(2.0 * np.pi / rng.uniform(15.0, 30.0)),
        phase=float(rng.uniform(0.0, 2.0 * np.pi)),
    )
    return Scene(width, height, frames, persons, tuple(textures), _background_texture(rng), motion)


def _to_uint8(colour: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(colour), 0, 255).astype(np.uint8)


def render_frame(scene: Scene, t: float) -> RenderedFrame:
    """Render the scene at time ``t`` (frames) with a z-buffer.

    Every pixel centre ``(c, r)`` shows the nearest surface covering it: a limb of a person (the
    smallest depth wins) or the background.
    """
    height, width = scene.height, scene.width
    offset = scene.background_motion.offset(t)
    image = _to_uint8(
        scene.background.colour_grid(
            np.arange(width, dtype=np.float64) - offset[0],
            np.arange(height, dtype=np.float64) - offset[1],
        )
    )
    part = np.zeros((height, width), dtype=np.uint8)
    u_map = np.zeros((height, width), dtype=np.float32)
    v_map = np.zeros((height, width), dtype=np.float32)
    person_map = np.full((height, width), -1, dtype=np.int16)
    depth = np.full((height, width), BACKGROUND_DEPTH, dtype=np.float32)

    for person, textures in zip(scene.people, scene.textures, strict=True):
        affines = limb_affines(person, t)
        for limb in LIMBS:
            geometry = person.geometry(limb.kind)
            affine = affines[limb.mask_part]
            half = geometry.max_half_width()
            corners = apply_affine(
                affine,
                np.array([geometry.s0, geometry.s0, geometry.s1, geometry.s1]),
                np.array([-half, half, -half, half]),
            )
            c0 = max(int(np.floor(corners[:, 0].min())), 0)
            c1 = min(int(np.ceil(corners[:, 0].max())), width - 1)
            r0 = max(int(np.floor(corners[:, 1].min())), 0)
            r1 = min(int(np.ceil(corners[:, 1].max())), height - 1)
            if c0 > c1 or r0 > r1:
                continue
            rows, cols = np.mgrid[r0 : r1 + 1, c0 : c1 + 1]
            rows, cols = rows.ravel(), cols.ravel()
            local = apply_affine(
                invert_affine(affine), cols.astype(np.float64), rows.astype(np.float64)
            )
            inside, slot, u, v = local_to_chart(
                geometry, len(limb.patches), local[:, 0], local[:, 1]
            )
            limb_depth = np.float32(person.depth_of(limb))
            drawn = inside & (limb_depth < depth[rows, cols])
            if not drawn.any():
                continue
            rows, cols, slot, u, v = rows[drawn], cols[drawn], slot[drawn], u[drawn], v[drawn]
            patches = np.asarray(limb.patches, dtype=np.uint8)[slot]
            for patch in limb.patches:
                sel = patches == patch
                if sel.any():
                    image[rows[sel], cols[sel]] = _to_uint8(textures[patch].colour(u[sel], v[sel]))
            part[rows, cols] = patches
            u_map[rows, cols] = u
            v_map[rows, cols] = v
            person_map[rows, cols] = person.track_id
            depth[rows, cols] = limb_depth
    return RenderedFrame(image, part, u_map, v_map, person_map, depth)
