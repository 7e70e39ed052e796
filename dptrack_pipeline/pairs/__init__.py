"""Unlabelled video -> person-cropped flow pairs (T -> T±1..K) for Siamese equivariance training.

* :mod:`~dptrack_pipeline.pairs.videos` - which videos, how many frames, where frame ``i`` is.
* :mod:`~dptrack_pipeline.pairs.people` - the ``--people`` file and the crop-box policy.
* :mod:`~dptrack_pipeline.pairs.plan` - anchors, pairs, flows needed, streaming release rules.
* :mod:`~dptrack_pipeline.pairs.compute` - one chunk: decode, estimate, crop, check.

The Beam layer is :mod:`dptrack_pipeline.beam.pairs_dofns` and :mod:`pipelines.pairs`; the
shards are written by :mod:`dptrack_pipeline.shards.pairs_writer`.
"""
