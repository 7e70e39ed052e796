"""The former single module of synthetic bodies, kept so that existing imports keep working.

Its contents were split by question:

* :mod:`~dptrack_pipeline.synth.limbs`: what a body is made of (14 limbs, shapes, patches, depth);
* :mod:`~dptrack_pipeline.synth.motion`: how a person moves (random walkers, limb frames at ``t``);
* :mod:`~dptrack_pipeline.synth.charts`: limb-local coordinates to ``I, U, V`` and to pixels;
* :mod:`~dptrack_pipeline.synth.keypoints`: the COCO keypoints on that body.

This module re-exports their public names unchanged (the same objects); new code imports from
the module that answers its question.
"""

from dptrack_pipeline.synth.charts import (
    apply_affine,
    chart_to_local,
    invert_affine,
    local_to_chart,
)
from dptrack_pipeline.synth.keypoints import COCO_KEYPOINT_NAMES, COCO_SKELETON, keypoints_at
from dptrack_pipeline.synth.limbs import (
    BASE_GEOMETRY,
    CENTRE,
    DEPTH_OFFSET,
    ELLIPSE,
    FAR,
    KINDS,
    LIMBS,
    NEAR,
    PATCH_SLOT,
    PATCH_TO_LIMB,
    PERSON_DEPTH_STEP,
    QUAD,
    SHOULDER_S,
    Limb,
    LimbGeometry,
)
from dptrack_pipeline.synth.motion import (
    PersonMotion,
    body_scale,
    canonical_pose,
    limb_affines,
    random_people,
    root_position,
)

__all__ = [
    "BASE_GEOMETRY",
    "CENTRE",
    "COCO_KEYPOINT_NAMES",
    "COCO_SKELETON",
    "DEPTH_OFFSET",
    "ELLIPSE",
    "FAR",
    "KINDS",
    "LIMBS",
    "Limb",
    "LimbGeometry",
    "NEAR",
    "PATCH_SLOT",
    "PATCH_TO_LIMB",
    "PERSON_DEPTH_STEP",
    "PersonMotion",
    "QUAD",
    "SHOULDER_S",
    "apply_affine",
    "body_scale",
    "canonical_pose",
    "chart_to_local",
    "invert_affine",
    "keypoints_at",
    "limb_affines",
    "local_to_chart",
    "random_people",
    "root_position",
]
