"""What one ``dptrack-build export`` is asked to do (:class:`ExportConfig`) and where it writes
(:func:`prepare_out`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from dptrack_pipeline.train.filters import LabelFilter

FORMAT_COCO = "densepose-coco"
FORMAT_POSETRACK = "densepose-posetrack"
FORMATS = (FORMAT_COCO, FORMAT_POSETRACK)


@dataclass(frozen=True)
class ExportConfig:
    """Settings of one ``dptrack-build export`` (see the module docstring).

    Attributes:
        shards: the ``run`` folder.
        out: the JSON file, or with ``per_video`` a folder.
        format: :data:`FORMAT_COCO` or :data:`FORMAT_POSETRACK`.
        annotations: the run's input annotation files; empty: those ``dataset_info.json``
            records (the DensePose-PoseTrack file, then the PoseTrack18 files).
        frames_root: the run's ``--frames-root``; ``None``: the recorded one.
        label_filter: which rows and points to keep.
        include_sources: export the annotated instances (``offset == 0``) too.
        write_frames: a folder inside the frames root to extract video-only frames into.
        per_video: one file per video (posetrack format only).
        overwrite: with ``per_video``, an ``out`` folder that holds files may be used; its
            ``*.json`` files are removed first (so no video of an earlier export stays).
    """

    shards: str
    out: str
    format: str = FORMAT_COCO
    annotations: tuple[str, ...] = ()
    frames_root: str | None = None
    label_filter: LabelFilter = field(default_factory=LabelFilter)
    include_sources: bool = True
    write_frames: str | None = None
    per_video: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"unknown format {self.format!r}; formats: {', '.join(FORMATS)}")
        if self.per_video and self.format != FORMAT_POSETRACK:
            raise ValueError("one file per video is a densepose-posetrack option")


def prepare_out(config: ExportConfig) -> None:
    """Make the output's folder; a per-video folder must be empty or ``overwrite`` given."""
    if not config.per_video:
        if os.path.isdir(config.out):
            raise ValueError(f"--out {config.out} is a folder; give a file name (or --per-video)")
        os.makedirs(os.path.dirname(os.path.abspath(config.out)), exist_ok=True)
        return
    if os.path.isfile(config.out):
        raise ValueError(f"--out {config.out} is a file; --per-video writes a folder")
    entries = sorted(os.listdir(config.out)) if os.path.isdir(config.out) else []
    if entries and not config.overwrite:
        raise ValueError(
            f"--out {config.out} is not empty ({len(entries)} entries); pass --overwrite to "
            "replace an earlier export's files"
        )
    for name in entries:
        if name.endswith(".json") and os.path.isfile(os.path.join(config.out, name)):
            os.remove(os.path.join(config.out, name))
