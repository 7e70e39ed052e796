"""Exports of a ``run`` folder's labels in the formats other trainers read.

* :mod:`.annotations`: one instance row as a DensePose-COCO annotation (the format's traps:
  point and UV ranges, part-mask encoding, all-or-none point lists).
* :mod:`.images`: the ``images`` records (the run's inputs, real frame sizes, frames extracted
  from video files).
* :mod:`.writer`: streamed, atomic JSON files.
* :mod:`.config`: what an export is asked to do, and its output folder rules.
* :mod:`.build`: ``dptrack-build export`` (filters, refusals, the two formats).
"""
