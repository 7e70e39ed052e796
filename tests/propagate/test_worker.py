"""One planning window of ``run`` (no Beam): propagating on a helper thread changes nothing."""

from __future__ import annotations

import pickle
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from dptrack_pipeline.flow.registry import create_estimator
from dptrack_pipeline.propagate.config import PropagateConfig
from dptrack_pipeline.propagate.launch import prepare
from dptrack_pipeline.propagate.worker import (
    GreyFrames,
    InstanceOutput,
    WindowSettings,
    process_windows,
)
from dptrack_pipeline.settings import worker_settings
from dptrack_pipeline.synth.dataset import generate_dataset


@pytest.fixture(scope="module")
def window_run(tmp_path_factory: pytest.TempPathFactory):
    synth = tmp_path_factory.mktemp("synth")
    generate_dataset(str(synth), videos=1, frames=12, seed=5, width=160, height=120, people=2)
    config = PropagateConfig(
        annotations=str(synth / "annotations.json"),
        frames_root=str(synth),
        out=str(tmp_path_factory.mktemp("out")),
        crop_size=32,
    )
    prepared = prepare(config)
    estimator = create_estimator(config.estimator)
    estimator.setup()
    return prepared.plan.tasks, estimator, worker_settings(WindowSettings, config)


def _outputs(tasks, estimator, settings, helper=None):
    """Every window run on its own, in order: outputs and summed counters."""
    counters: Counter = Counter()
    outputs = []
    for task in tasks:
        for result in process_windows([task], estimator, settings, None, helper):
            counters.update(result.counters)
            outputs.extend(result.outputs)
    return outputs, counters


def test_windows_walked_together_give_what_each_window_gives_alone(window_run) -> None:
    tasks, estimator, settings = window_run
    alone, alone_counts = _outputs(tasks, estimator, settings)
    results = list(process_windows(tasks, estimator, settings))
    assert [r.task for r in results] == list(tasks)
    together = [o for r in results for o in r.outputs]
    assert pickle.dumps(together) == pickle.dumps(alone)
    total: Counter = Counter()
    for r in results:
        total.update(r.counters)
    assert total == alone_counts


def _same(a, b) -> bool:
    """Outputs equal field by field (rows with NaN scores, arrays) through their pickles."""
    return pickle.dumps(a) == pickle.dumps(b)


def test_a_helper_thread_gives_the_same_outputs_and_counters(window_run) -> None:
    tasks, estimator, settings = window_run
    inline, inline_counts = _outputs(tasks, estimator, settings)
    with ThreadPoolExecutor(max_workers=1) as helper:
        overlapped, overlapped_counts = _outputs(tasks, estimator, settings, helper)
    assert sum(isinstance(o, InstanceOutput) for o in inline) > 10
    assert inline_counts["points_in"] > 0
    assert overlapped_counts == inline_counts
    assert len(overlapped) == len(inline)
    assert all(_same(a, b) for a, b in zip(overlapped, inline, strict=True))


def test_grey_frames_are_converted_once_and_forgotten_with_their_frame() -> None:
    frames = {i: np.full((4, 6, 3), 10 * i, np.uint8) for i in range(3)}
    greys = GreyFrames()
    first = greys.of(1, frames)
    assert first.dtype == np.float32 and first.shape == (4, 6) and first[0, 0] == 10
    assert greys.of(1, frames) is first
    greys.keep_only({0: frames[0]})
    assert greys.of(1, frames) is not first


def test_helper_and_carry_are_one_or_the_other(window_run) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from dptrack_pipeline.schedule import StepOverlap

    tasks, estimator, settings = window_run
    with ThreadPoolExecutor(max_workers=1) as helper:
        carry = StepOverlap(helper, Counter())
        with pytest.raises(ValueError, match="helper or carry"):
            list(process_windows(tasks, estimator, settings, None, helper, carry=carry))
