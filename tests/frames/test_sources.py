"""The former module path :mod:`dptrack_pipeline.frames.sources` still gives the package's names."""

from __future__ import annotations

import dptrack_pipeline.frames as frames
from dptrack_pipeline.frames import sources


def test_sources_re_exports_every_public_name() -> None:
    assert frames.__all__, "the package lists its public names"
    for name in frames.__all__:
        assert getattr(sources, name) is getattr(frames, name), name
