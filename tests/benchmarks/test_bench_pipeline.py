"""``benchmarks/bench_pipeline.py``: the phase split of ``--phases`` (the run itself takes a
minute on the real video and is a benchmark, not a test)."""

from __future__ import annotations


def test_phase_lines_split_the_wall_time_around_the_batches(bench_script) -> None:
    bench = bench_script("bench_pipeline")
    batches = [(1.0, 3.0), (3.5, 6.0), (6.0, 11.0)]  # 9.5 s inside, 0.5 s between
    lines = bench.phase_lines(0.25, 12.0, batches, flows=50)
    assert lines[0] == (
        "phases          :  0.75 s before the first flow, 10.00 s from first to last "
        "( 9.50 s in 3 estimator batches, 0.50 s between them),  1.00 s after the last"
    )
    assert lines[1] == "first to last   :    5.00 pairs/s"


def test_record_batches_times_every_batch_of_the_estimator_class(bench_script) -> None:
    import numpy as np

    from dptrack_pipeline.flow.registry import create_estimator

    bench = bench_script("bench_pipeline")
    cls = type(create_estimator("farneback"))
    own = cls.__dict__.get("estimate_batch")
    try:
        times = bench.record_batches("farneback")
        frame = np.zeros((16, 16, 3), np.uint8)
        create_estimator("farneback").estimate_batch([(frame, frame), (frame, frame)])
        assert len(times) == 1 and times[0][0] <= times[0][1]
    finally:
        if own is None:
            del cls.estimate_batch  # back to the inherited method
        else:
            cls.estimate_batch = own
