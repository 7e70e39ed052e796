"""Configuration of the ``run`` job (labels + video -> propagated instance shards).

A frozen dataclass, changed with :func:`dataclasses.replace`; the CLI builds it from flags and the
Beam pipeline (:mod:`pipelines.propagate`) reads it. Everything in it is plain data so that it
pickles to remote workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dptrack_pipeline import settings
from dptrack_pipeline.propagate.checks import DEFAULT_PRESET, Checks, resolve_checks

TARGET_INSTANCES_PER_SHARD = 500
"""Automatic shard count aims at this many instances per shard (~100-400 MB of HDF5 at 256 px),
small enough for a worker to sort and write one shard in memory."""


@dataclass(frozen=True)
class PropagateConfig:
    """Settings of one ``dptrack-build run``.

    Attributes:
        annotations: DensePose-PoseTrack JSON (the labelled frames).
        frames_root: folder that annotation ``file_name``s are relative to (image folders or
            video files, see :func:`dptrack_pipeline.frames.resolve_frame`).
        out: output folder (local path or a Beam filesystem URL such as ``gs://``).
        posetrack: PoseTrack18 JSON files giving boxes/keypoints of the same videos' other frames.
        estimator: flow estimator name in the registry (``dis``, ``farneback``, ...).
        estimator_options: keyword options of the estimator (e.g. ``{"preset": "fast"}``).
        max_offset: ``K``; targets are ``T ± 1..K``.
        preset: the point checks' preset, ``measured`` or ``paper``
            (:mod:`dptrack_pipeline.propagate.checks`).
        fb_threshold: forward-backward threshold in pixels; ``None`` = the preset's.
        photometric_check: ``"zncc:T"`` (keep points with ZNCC >= T) or ``"none"``; ``None`` =
            the preset's.
        chain_check: chain threshold in pixels or ``"none"``; ``None`` = the preset's.
        num_shards: number of output shards; ``None`` = one per
            :data:`TARGET_INSTANCES_PER_SHARD` planned instances.
        crop_size: side of the square person crops and crop flows in the HDF5 files.
        follow_symlinks: accept symlinks that leave their root (frame folders that are symlink
            farms); by default such a path is a ``path_outside_root`` reject
            (:mod:`dptrack_pipeline.frames.containment`).
        progress: show progress bars (in-process runners only).
    """

    annotations: str
    frames_root: str
    out: str
    posetrack: tuple[str, ...] = ()
    estimator: str = settings.DEFAULT_ESTIMATOR
    estimator_options: dict[str, Any] = field(default_factory=dict)
    max_offset: int = settings.DEFAULT_MAX_OFFSET
    preset: str = DEFAULT_PRESET
    fb_threshold: float | None = None
    photometric_check: str | None = None
    chain_check: float | str | None = None
    num_shards: int | None = None
    crop_size: int = settings.DEFAULT_CROP_SIZE
    follow_symlinks: bool = False
    progress: bool = False

    def __post_init__(self) -> None:
        settings.check_common(
            max_offset=self.max_offset,
            fb_threshold=self.checks.fb_threshold,  # resolving the checks validates them
            crop_size=self.crop_size,
            num_shards=self.num_shards,
        )

    @property
    def checks(self) -> Checks:
        """The point checks: the preset's for the estimator, with the given overrides."""
        return resolve_checks(
            self.preset,
            self.estimator,
            fb_threshold=self.fb_threshold,
            photometric=self.photometric_check,
            chain=self.chain_check,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form for ``dataset_info.json`` (see
        :func:`~dptrack_pipeline.settings.manifest_config`)."""
        return settings.manifest_config(self)
