"""Synthetic DensePose-Track data with exact truth, and scoring of propagated labels against it.

* :mod:`~dptrack_pipeline.synth.limbs`: what an articulated 2D body is made of (14 limbs,
  24 DensePose patches, depth order).
* :mod:`~dptrack_pipeline.synth.motion`: random walking people and their limb frames at any time.
* :mod:`~dptrack_pipeline.synth.charts`: analytic surface charts, limb-local coordinates to
  ``I, U, V`` and to pixels.
* :mod:`~dptrack_pipeline.synth.keypoints`: the COCO keypoints of that body.
* :mod:`~dptrack_pipeline.synth.render`: scenes (people, textures, moving background) and the
  z-buffered rasteriser giving the image and exact ``I, U, V``, person and depth maps.
* :mod:`~dptrack_pipeline.synth.truth`: exact flow and visibility between frames; truth files
  and their loaders.
* :mod:`~dptrack_pipeline.synth.annotate`: one rendered person as a DensePose-PoseTrack
  annotation.
* :mod:`~dptrack_pipeline.synth.dataset`: :func:`generate_dataset` writes frames,
  ``annotations.json`` (DensePose-PoseTrack) and ``truth/``.
* :mod:`~dptrack_pipeline.synth.score`: :func:`score_propagation` compares propagated instances
  with the truth.

"""

from dptrack_pipeline.synth.dataset import generate_dataset
from dptrack_pipeline.synth.score import format_score_table, score_propagation
from dptrack_pipeline.synth.truth import load_flow_truth, load_frame_truth

__all__ = [
    "format_score_table",
    "generate_dataset",
    "load_flow_truth",
    "load_frame_truth",
    "score_propagation",
]
