"""Optical flow: estimators registered by name, sampling and warping, the forward-backward check,
flow file formats and accuracy metrics.

Importing this package registers the built-in estimators (``"dis"``, ``"farneback"``, and
``"flownet2"``, which imports torch only when it is set up). Other distributions add estimators
through entry points of the group ``dptrack.estimators``, discovered on first lookup (see
:mod:`dptrack_pipeline.flow.registry`).
"""

from dptrack_pipeline.flow import flownet2 as _flownet2  # noqa: F401  (registers "flownet2")
from dptrack_pipeline.flow import opencv as _opencv  # noqa: F401  (registers the estimators)
from dptrack_pipeline.flow.consistency import (
    DEFAULT_FB_THRESHOLD,
    PointTrack,
    compose_flows,
    forward_backward_error_map,
    forward_backward_valid_mask,
    track_points,
)
from dptrack_pipeline.flow.plugins import (
    ENTRY_POINT_GROUP,
    EstimatorPluginError,
    EstimatorPluginWarning,
    broken_estimators,
)
from dptrack_pipeline.flow.registry import (
    FlowEstimator,
    available_estimators,
    create_estimator,
    register_estimator,
)
from dptrack_pipeline.flow.sampling import points_inside, sample_bilinear, warp_backward

__all__ = [
    "DEFAULT_FB_THRESHOLD",
    "ENTRY_POINT_GROUP",
    "EstimatorPluginError",
    "EstimatorPluginWarning",
    "FlowEstimator",
    "PointTrack",
    "available_estimators",
    "broken_estimators",
    "compose_flows",
    "create_estimator",
    "forward_backward_error_map",
    "forward_backward_valid_mask",
    "points_inside",
    "register_estimator",
    "sample_bilinear",
    "track_points",
    "warp_backward",
]
