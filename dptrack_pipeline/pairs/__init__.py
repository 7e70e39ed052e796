"""The ``pairs`` job: unlabelled video -> person-cropped flow pairs (T -> T±1..K) for Siamese
equivariance training.

* :mod:`~dptrack_pipeline.pairs.config` - the job's settings.
* :mod:`~dptrack_pipeline.pairs.videos` - which videos, how many frames, where frame ``i`` is.
* :mod:`~dptrack_pipeline.pairs.people` - the ``--people`` file and the crop-box policy.
* :mod:`~dptrack_pipeline.pairs.launch` - what the launcher decides (videos, people, shards).
* :mod:`~dptrack_pipeline.pairs.plan` - anchors, pairs, flows needed, chunks of a video.
* :mod:`~dptrack_pipeline.pairs.worker` - one chunk: decode, estimate, crop, check.
* :mod:`~dptrack_pipeline.pairs.summary` and :mod:`~dptrack_pipeline.pairs.render` - what
  ``inspect`` prints and draws.

It shares the engine with ``run`` (:mod:`dptrack_pipeline.schedule`, :mod:`dptrack_pipeline.crops`,
:mod:`dptrack_pipeline.rejects`) and never imports :mod:`dptrack_pipeline.propagate`. The Beam
layer is :mod:`dptrack_pipeline.beam.pairs` and :mod:`pipelines.pairs`; the shards are written by
:mod:`dptrack_pipeline.shards.pairs_writer`.
"""
