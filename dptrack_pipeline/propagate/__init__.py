"""The ``run`` job: DensePose-Track labels + video -> labels propagated to T±1..K along flow.

* :mod:`~dptrack_pipeline.propagate.config` - the job's settings.
* :mod:`~dptrack_pipeline.propagate.launch` - what the launcher decides (annotations loaded and
  validated once, window tasks, shard count, the planned counters).
* :mod:`~dptrack_pipeline.propagate.plan` - windows: which frames and directed flows each labelled
  frame needs.
* :mod:`~dptrack_pipeline.propagate.labels` - moving points, keypoints, part masks and boxes
  through a flow (pure maths).
* :mod:`~dptrack_pipeline.propagate.worker` - one window in, instances and rejects out.
* :mod:`~dptrack_pipeline.propagate.summary` and :mod:`~dptrack_pipeline.propagate.render` - what
  ``inspect`` prints and draws.

It shares the engine with ``pairs`` (:mod:`dptrack_pipeline.schedule`,
:mod:`dptrack_pipeline.crops`, :mod:`dptrack_pipeline.rejects`) and never imports
:mod:`dptrack_pipeline.pairs`. The Beam layer is :mod:`dptrack_pipeline.beam.propagate` and
:mod:`pipelines.propagate`.
"""
