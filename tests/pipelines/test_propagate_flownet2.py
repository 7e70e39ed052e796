"""The whole ``run`` pipeline with ``--estimator flownet2`` (random weights, CPU): the plumbing.

The weights are random, so the flows mean nothing; what is checked is that FlowNet2 plugs into
the pipeline like any estimator: batched flows of the right size, counters that add up, files
that verify, and the estimator's resolved options in ``dataset_info.json``.
"""

from __future__ import annotations

from pathlib import Path

from dptrack_pipeline.shards import read_dataset_info, verify_output
from dptrack_pipeline.shards.counters import KIND_RUN, counter_problems


def test_run_with_flownet2_on_cpu(
    tmp_path: Path, flownet2_checkpoint: Path, build_synth_shards
) -> None:
    synth_args = ["--videos", "1", "--frames", "10", "--width", "128", "--height", "96"]
    synth_args += ["--seed", "3"]
    run_args = ["--offsets", "2", "--crop-size", "32", "--estimator", "flownet2"]
    run_args += ["--checkpoint", str(flownet2_checkpoint), "--device", "cpu", "--batch-size", "4"]
    _, out = build_synth_shards(tmp_path, synth_args, run_args)
    info = read_dataset_info(str(out))
    counters = info["counters"]
    assert counter_problems(counters, KIND_RUN) == []
    assert verify_output(str(out)) == []
    # One labelled frame (index 4), T-2..T+2: four targets, a forward and a backward flow each.
    assert counters["flows_computed"] == 8
    assert counters["instances_written"] == counters["instances_in"] > 0
    assert info["estimator"] == "flownet2"
    params = info["estimator_params"]
    assert params["checkpoint"] == str(flownet2_checkpoint)
    assert (params["device"], params["precision"], params["batch_size"]) == ("cpu", "fp32", 4)
    import hashlib

    provenance = info["extra"]["estimator_provenance"]
    expected = hashlib.sha256(flownet2_checkpoint.read_bytes()).hexdigest()
    assert provenance["checkpoint_sha256"] == expected
    assert provenance["checkpoint_bytes"] == flownet2_checkpoint.stat().st_size
