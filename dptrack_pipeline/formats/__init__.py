"""Annotation formats: DensePose-PoseTrack and PoseTrack18 readers, validation, part-mask RLEs.

* :mod:`.rle`: COCO RLE part masks on the 256x256 box grid <-> part label maps.
* :mod:`.validation`: per-record checks returning ``(reason_code, detail)`` problems.
* :mod:`.annotation_set`: :class:`AnnotationSet`, the records both readers produce, and merging.
* :mod:`.coco_json`: reading a COCO-style file into an :class:`AnnotationSet` (both readers).
* :mod:`.densepose_posetrack`: the DensePose-PoseTrack reader, its problem listing, and merging
  PoseTrack18 into it.
* :mod:`.posetrack18`: the PoseTrack18 reader.
"""

from dptrack_pipeline.formats.densepose_posetrack import (
    AnnotationSet,
    load_densepose_posetrack,
    merge_annotation_sets,
    merge_posetrack18,
    problems,
)
from dptrack_pipeline.formats.posetrack18 import load_many, load_posetrack18
from dptrack_pipeline.formats.rle import (
    MASK_PART_NAMES,
    SURFACE_TO_MASK_PART,
    decode_part_masks,
    decode_rle,
    encode_part_masks,
)
from dptrack_pipeline.formats.validation import (
    REASON_CODES,
    validate_densepose_annotation,
    validate_image,
)

__all__ = [
    "MASK_PART_NAMES",
    "REASON_CODES",
    "SURFACE_TO_MASK_PART",
    "AnnotationSet",
    "decode_part_masks",
    "decode_rle",
    "encode_part_masks",
    "load_densepose_posetrack",
    "load_many",
    "load_posetrack18",
    "merge_annotation_sets",
    "merge_posetrack18",
    "problems",
    "validate_densepose_annotation",
    "validate_image",
]
