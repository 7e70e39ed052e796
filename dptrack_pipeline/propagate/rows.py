"""What an instance row of a ``run`` holds: ``schemas/instances.v2.json`` without the writer's
columns (``dense_file``, ``crop_index``, ``flow_index``).

A **source** row is the annotation itself (offset 0): its quality columns are NaN (nothing was
moved) and its drop counts 0. A **propagated** row carries the moved labels and their quality:
per kept point the forward-backward error, photometric agreement and chain error; per keypoint the
forward-backward error, photometric agreement and the distance to the target frame's annotated
keypoint of the same track; per instance the medians over kept points, the kept fraction and the
PCKh@0.5 of the keypoints (:mod:`dptrack_pipeline.propagate.agreement`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dptrack_pipeline.propagate.agreement import Agreement
from dptrack_pipeline.propagate.checks import Checks
from dptrack_pipeline.propagate.labels import PropagatedInstance
from dptrack_pipeline.structures import NUM_KEYPOINTS, Box, FrameRef, PersonInstance


def _floats(values: Any) -> list[float]:
    return np.asarray(values, np.float32).reshape(-1).tolist()


def _median(values: np.ndarray) -> float:
    values = np.asarray(values, np.float32)
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else float("nan")


def _common(
    person: PersonInstance, frame: FrameRef, source: FrameRef, estimator: str, checks: Checks
) -> dict[str, Any]:
    return {
        "video_id": person.video_id,
        "frame_id": int(frame.frame_id),
        "frame_index": int(frame.index),
        "image_file": frame.image_file,
        "image_id": int(frame.image_id),
        "track_id": int(person.track_id),
        "annotation_id": int(person.annotation_id),
        "source_frame_id": int(source.frame_id),
        "source_frame_index": int(source.index),
        "offset": int(frame.index - source.index),
        "estimator": estimator,
        "fb_threshold": float(checks.fb_threshold),
    }


def _labels(
    bbox: Box, box_source: str, keypoints: np.ndarray, dp: tuple, masks: tuple[str, ...]
) -> dict[str, Any]:
    dp_x, dp_y, dp_i, dp_u, dp_v, dp_source_index = dp
    return {
        "bbox": [float(v) for v in bbox],
        "box_source": box_source,
        "keypoints": _floats(keypoints),
        "dp_x": _floats(dp_x),
        "dp_y": _floats(dp_y),
        "dp_I": np.asarray(dp_i).astype(np.uint8).tolist(),
        "dp_U": _floats(dp_u),
        "dp_V": _floats(dp_v),
        "dp_source_index": np.asarray(dp_source_index, np.int32).tolist(),
        "dp_masks": list(masks),
        "crop_box": [float(v) for v in bbox],
    }


def source_row(
    person: PersonInstance, frame: FrameRef, estimator: str, checks: Checks, masks: tuple[str, ...]
) -> dict[str, Any]:
    """The row of an annotated source instance (its own frame, offset 0)."""
    n = int(person.dp_x.size)
    nan_points = [float("nan")] * n
    nan_keypoints = [float("nan")] * NUM_KEYPOINTS
    dp = (person.dp_x, person.dp_y, person.dp_I, person.dp_U, person.dp_V, np.arange(n))
    return {
        **_common(person, frame, frame, estimator, checks),
        **_labels(person.bbox, "annotation", person.keypoints, dp, masks),
        "flow_valid_fraction": float("nan"),
        "points_in": 0,
        "points_dropped_fb": 0,
        "points_dropped_outside": 0,
        "dp_fb_error": nan_points,
        "dp_photo": nan_points,
        "dp_chain_error": nan_points,
        "kp_fb_error": nan_keypoints,
        "kp_photo": nan_keypoints,
        "kp_posetrack_error": nan_keypoints,
        "fb_error_median": float("nan"),
        "photo_median": float("nan"),
        "kept_fraction": float("nan"),
        "pckh": float("nan"),
        "points_dropped_photo": 0,
        "points_dropped_chain": 0,
    }


def propagated_row(
    person: PersonInstance,
    frame: FrameRef,
    source: FrameRef,
    estimator: str,
    checks: Checks,
    moved: PropagatedInstance,
    masks: tuple[str, ...],
    valid_fraction: float,
    agreement: Agreement,
) -> dict[str, Any]:
    """The row of ``person`` propagated from ``source`` into ``frame``."""
    dp = (moved.dp_x, moved.dp_y, moved.dp_I, moved.dp_U, moved.dp_V, moved.dp_source_index)
    return {
        **_common(person, frame, source, estimator, checks),
        **_labels(moved.bbox, moved.box_source, moved.keypoints, dp, masks),
        "flow_valid_fraction": float(valid_fraction),
        "points_in": int(moved.points_in),
        "points_dropped_fb": int(moved.points_dropped_fb),
        "points_dropped_outside": int(moved.points_dropped_outside),
        "dp_fb_error": _floats(moved.dp_fb_error),
        "dp_photo": _floats(moved.dp_photo),
        "dp_chain_error": _floats(moved.dp_chain_error),
        "kp_fb_error": _floats(moved.kp_fb_error),
        "kp_photo": _floats(moved.kp_photo),
        "kp_posetrack_error": _floats(agreement.errors),
        "fb_error_median": _median(moved.dp_fb_error),
        "photo_median": _median(moved.dp_photo),
        "kept_fraction": moved.points_kept / moved.points_in if moved.points_in else float("nan"),
        "pckh": float(agreement.pckh),
        "points_dropped_photo": int(moved.points_dropped_photo),
        "points_dropped_chain": int(moved.points_dropped_chain),
    }
