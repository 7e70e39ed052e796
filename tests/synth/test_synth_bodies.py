"""The former module path :mod:`dptrack_pipeline.synth.bodies` still gives every body name."""

from __future__ import annotations

from dptrack_pipeline.synth import bodies, charts, keypoints, limbs, motion


def test_bodies_re_exports_the_split_modules() -> None:
    split = (limbs, motion, charts, keypoints)
    for name in bodies.__all__:
        assert any(getattr(bodies, name) is vars(module).get(name) for module in split), name
    defined_here = {name for name in vars(bodies) if not name.startswith("_")}
    assert defined_here == set(bodies.__all__)
