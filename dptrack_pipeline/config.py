"""Configuration of the ``run`` job (labels + video -> propagated instance shards).

A frozen dataclass, changed with :func:`dataclasses.replace`; the CLI builds it from flags and the
Beam pipeline (:mod:`pipelines.propagate`) reads it. Everything in it is plain data so that it
pickles to remote workers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from dptrack_pipeline.flow.consistency import DEFAULT_FB_THRESHOLD

DEFAULT_MAX_OFFSET = 3
DEFAULT_CROP_SIZE = 256
DEFAULT_ESTIMATOR = "dis"
TARGET_INSTANCES_PER_SHARD = 500
"""Automatic shard count aims at this many instances per shard (~100-400 MB of HDF5 at 256 px),
small enough for a worker to sort and write one shard in memory."""


@dataclass(frozen=True)
class PropagateConfig:
    """Settings of one ``dptrack-build run``.

    Attributes:
        annotations: DensePose-PoseTrack JSON (the labelled frames).
        frames_root: folder that annotation ``file_name``s are relative to (image folders or
            video files, see :func:`dptrack_pipeline.frames.sources.resolve_frame`).
        out: output folder (local path or a Beam filesystem URL such as ``gs://``).
        posetrack: PoseTrack18 JSON files giving boxes/keypoints of the same videos' other frames.
        estimator: flow estimator name in the registry (``dis``, ``farneback``, ...).
        estimator_options: keyword options of the estimator (e.g. ``{"preset": "fast"}``).
        max_offset: ``K``; targets are ``T ± 1..K``.
        fb_threshold: forward-backward threshold in pixels (Slim DensePose: 5).
        num_shards: number of output shards; ``None`` = one per
            :data:`TARGET_INSTANCES_PER_SHARD` planned instances.
        crop_size: side of the square person crops and crop flows in the HDF5 files.
        progress: show progress bars (in-process runners only).
    """

    annotations: str
    frames_root: str
    out: str
    posetrack: tuple[str, ...] = ()
    estimator: str = DEFAULT_ESTIMATOR
    estimator_options: dict[str, Any] = field(default_factory=dict)
    max_offset: int = DEFAULT_MAX_OFFSET
    fb_threshold: float = DEFAULT_FB_THRESHOLD
    num_shards: int | None = None
    crop_size: int = DEFAULT_CROP_SIZE
    progress: bool = False

    def __post_init__(self) -> None:
        if self.max_offset < 1:
            raise ValueError(f"max_offset (--offsets) must be >= 1, got {self.max_offset}")
        if not self.fb_threshold > 0:
            raise ValueError(f"fb_threshold must be > 0 pixels, got {self.fb_threshold}")
        if self.num_shards is not None and self.num_shards < 1:
            raise ValueError(f"num_shards must be >= 1, got {self.num_shards}")
        if self.crop_size < 8:
            raise ValueError(f"crop_size must be >= 8 pixels, got {self.crop_size}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form, as recorded in ``dataset_info.json`` (``config``).

        ``out`` and ``progress`` are left out: where a run writes and whether it shows bars do
        not change its result, and two runs into different folders must write identical files.
        """
        d = asdict(self)
        del d["out"], d["progress"]
        d["posetrack"] = list(self.posetrack)
        d["estimator_options"] = dict(sorted(self.estimator_options.items()))
        return d


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
        people: optional people file (see :mod:`dptrack_pipeline.pairs.people`); ``None`` crops
            the centred square of each frame.
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
        progress: show progress bars (in-process runners only).
    """

    videos: tuple[str, ...]
    out: str
    people: str | None = None
    max_offset: int = DEFAULT_MAX_OFFSET
    stride: int = 1
    crop_size: int = DEFAULT_CROP_SIZE
    mode: str = "direct"
    estimator: str = DEFAULT_ESTIMATOR
    estimator_options: dict[str, Any] = field(default_factory=dict)
    fb_threshold: float = DEFAULT_FB_THRESHOLD
    min_valid: float = 0.0
    context: float = 1.25
    people_reach: int = 20
    chunk_anchors: int = 256
    num_shards: int | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        if not self.videos:
            raise ValueError("no videos given (--videos)")
        if self.max_offset < 1:
            raise ValueError(f"max_offset (--offsets) must be >= 1, got {self.max_offset}")
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        if self.mode not in ("direct", "chained"):
            raise ValueError(f"mode must be 'direct' or 'chained', got {self.mode!r}")
        if not self.fb_threshold > 0:
            raise ValueError(f"fb_threshold must be > 0 pixels, got {self.fb_threshold}")
        if not 0.0 <= self.min_valid <= 1.0:
            raise ValueError(f"min_valid must be in [0, 1], got {self.min_valid}")
        if not self.context > 0:
            raise ValueError(f"context must be > 0, got {self.context}")
        if self.people_reach < 0:
            raise ValueError(f"people_reach must be >= 0, got {self.people_reach}")
        if self.chunk_anchors < 1:
            raise ValueError(f"chunk_anchors must be >= 1, got {self.chunk_anchors}")
        if self.num_shards is not None and self.num_shards < 1:
            raise ValueError(f"num_shards must be >= 1, got {self.num_shards}")
        if self.crop_size < 8:
            raise ValueError(f"crop_size must be >= 8 pixels, got {self.crop_size}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form for ``dataset_info.json`` (``out`` and ``progress`` left out)."""
        d = asdict(self)
        del d["out"], d["progress"]
        d["videos"] = list(self.videos)
        d["estimator_options"] = dict(sorted(self.estimator_options.items()))
        return d
