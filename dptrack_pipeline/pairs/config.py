"""Configuration of the ``pairs`` job (unlabelled video -> flow-pair shards).

A frozen dataclass, changed with :func:`dataclasses.replace`; the CLI builds it from flags and the
Beam pipeline (:mod:`pipelines.pairs`) reads it. Everything in it is plain data so that it pickles
to remote workers. The settings it shares with ``run`` are checked by
:func:`dptrack_pipeline.settings.check_common`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dptrack_pipeline import settings
from dptrack_pipeline.pairs.people_formats import PEOPLE_FORMATS

TARGET_PAIRS_PER_SHARD = 1000
"""Automatic shard count of ``pairs`` aims at this many pairs per shard (about 100-250 MB of HDF5
at 256 px with shared crops)."""


@dataclass(frozen=True)
class PairsConfig:
    """Settings of one ``dptrack-build pairs`` (unlabelled video -> flow-pair shards).

    Attributes:
        videos: video files, frame folders or folders of them (see
            :func:`dptrack_pipeline.pairs.videos.discover_videos`).
        out: output folder (local path or a Beam filesystem URL).
        people: optional people file or folder (see :mod:`dptrack_pipeline.pairs.people`);
            ``None`` crops the centred square of each frame.
        people_format: its format, or ``auto`` (see :mod:`dptrack_pipeline.pairs.people_formats`).
        people_keyframes: MPII's image-to-sequence mapping file (MPII formats only).
        max_offset: ``K``; pairs ``T -> T ± 1..K``.
        stride: anchors are frames ``0, stride, 2 * stride, ...``.
        crop_size: side S of the square crops and crop flows.
        mode: ``direct`` (estimate every ``T -> T+k``) or ``chained`` (compose one-step flows).
        estimator: flow estimator name in the registry; estimator_options: its options.
        fb_threshold: forward-backward threshold in pixels.
        min_valid: pairs whose valid fraction is below this are rejected (pairs with no valid
            pixel always are).
        context: person box side = ``200 * scale * context``.
        people_reach: a frame without people-file rows uses the nearest frame with rows within
            this many frames.
        chunk_anchors: anchors per Beam element (a long video splits into parallel chunks).
        num_shards: output shards; ``None`` = about one per :data:`TARGET_PAIRS_PER_SHARD`.
        follow_symlinks: accept symlinks that leave their root (frame folders that are symlink
            farms); by default such a path is a ``path_outside_root`` reject
            (:mod:`dptrack_pipeline.frames.containment`).
        progress: show progress bars (in-process runners only).
    """

    videos: tuple[str, ...]
    out: str
    people: str | None = None
    people_format: str = "auto"
    people_keyframes: str | None = None
    max_offset: int = settings.DEFAULT_MAX_OFFSET
    stride: int = 1
    crop_size: int = settings.DEFAULT_CROP_SIZE
    mode: str = "direct"
    estimator: str = settings.DEFAULT_ESTIMATOR
    estimator_options: dict[str, Any] = field(default_factory=dict)
    fb_threshold: float = settings.DEFAULT_FB_THRESHOLD
    min_valid: float = 0.0
    context: float = 1.25
    people_reach: int = 20
    chunk_anchors: int = 256
    num_shards: int | None = None
    follow_symlinks: bool = False
    progress: bool = False

    def __post_init__(self) -> None:
        if not self.videos:
            raise ValueError("no videos given (--videos)")
        settings.check_common(
            max_offset=self.max_offset,
            fb_threshold=self.fb_threshold,
            crop_size=self.crop_size,
            num_shards=self.num_shards,
        )
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        if self.mode not in ("direct", "chained"):
            raise ValueError(f"mode must be 'direct' or 'chained', got {self.mode!r}")
        if not 0.0 <= self.min_valid <= 1.0:
            raise ValueError(f"min_valid must be in [0, 1], got {self.min_valid}")
        if not self.context > 0:
            raise ValueError(f"context must be > 0, got {self.context}")
        if self.people_format not in PEOPLE_FORMATS:
            raise ValueError(
                f"people_format must be one of {', '.join(PEOPLE_FORMATS)}, got "
                f"{self.people_format!r}"
            )
        if self.people_reach < 0:
            raise ValueError(f"people_reach must be >= 0, got {self.people_reach}")
        if self.chunk_anchors < 1:
            raise ValueError(f"chunk_anchors must be >= 1, got {self.chunk_anchors}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form for ``dataset_info.json`` (see
        :func:`~dptrack_pipeline.settings.manifest_config`)."""
        return settings.manifest_config(self)
