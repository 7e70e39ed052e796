"""The former single module of frame sources, kept so that existing imports keep working.

Its contents were split by question into :mod:`~dptrack_pipeline.frames.location`,
:mod:`~dptrack_pipeline.frames.errors`, :mod:`~dptrack_pipeline.frames.images`,
:mod:`~dptrack_pipeline.frames.video` and :mod:`~dptrack_pipeline.frames.decode`; this module
re-exports the public names of the package (its ``__all__``), so
``from dptrack_pipeline.frames.sources import decode_frames`` and
``from dptrack_pipeline.frames import decode_frames`` give the same object. New code imports
from :mod:`dptrack_pipeline.frames`.
"""

from dptrack_pipeline.frames import *  # noqa: F403 (the package's public names, listed once there)
