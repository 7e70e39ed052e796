"""The ``dptrack-build`` command line: every command end to end on a tiny synth set.

``run`` gets ``--runner FnApiRunner``, an option it does not know itself: that also checks that
unknown options reach Beam's PipelineOptions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dptrack_pipeline.cli import main


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "synth"
    result = CliRunner().invoke(
        main, ["synth", str(out), "--videos", "1", "--frames", "12", "--seed", "5"]
    )
    assert result.exit_code == 0, result.output
    assert (out / "annotations.json").exists() and (out / "truth").is_dir()
    return out


def invoke(*args: str) -> object:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def run_args(synth: Path, out: Path, *extra: str) -> list[str]:
    return [
        "run", "--annotations", str(synth / "annotations.json"), "--frames-root", str(synth),
        "--out", str(out), "--crop-size", "32", "--no-progress", "--runner", "FnApiRunner",
        *extra,
    ]  # fmt: skip


def test_help_teaches_every_command() -> None:
    for cmd in ([], ["run"], ["pairs"], ["inspect"], ["validate"], ["synth"], ["score"], ["train"]):
        result = invoke(*cmd, "--help")
        assert result.exit_code == 0 and "Usage" in result.output
    assert "PipelineOptions" in invoke("run", "--help").output


def test_run_inspect_score(synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "shards"
    result = invoke(*run_args(synth, out, "--estimator-option", "preset=fast"))
    assert result.exit_code == 0, result.output
    assert "instances" in result.output and "0 rejected" in result.output
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["estimator_params"]["preset"] == "fast"

    result = invoke("inspect", str(out), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["problems"] == [] and summary["rejects"] == {}
    assert {o["offset"] for o in summary["offsets"]} == {-3, -2, -1, 0, 1, 2, 3}

    render = tmp_path / "render"
    result = invoke("inspect", str(out), "--render", str(render), "--max-render", "2")
    assert result.exit_code == 0, result.output
    assert "counters add up" in result.output
    assert len(list(render.glob("*_overlay.png"))) == 2
    assert len(list(render.glob("*_crops_flow.png"))) == 2

    result = invoke("score", str(out), "--truth", str(synth))
    assert result.exit_code == 0, result.output
    assert "median" in result.output and "precision" in result.output

    # A manifest whose counters do not add up: inspect says so and exits 1.
    manifest = out / "dataset_info.json"
    info["counters"]["instances_written"] += 1
    manifest.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    result = invoke("inspect", str(out))
    assert result.exit_code == 1
    assert "COUNTERS DO NOT ADD UP" in result.output
    assert "counters do not add up: instances_in" in result.output
    # ... and a folder without a manifest is one line, not a traceback.
    manifest.unlink()
    result = CliRunner().invoke(main, ["inspect", str(out)])
    assert result.exit_code == 1 and "has no dataset_info.json" in result.output
    assert "Traceback" not in result.output


def test_run_refuses_to_overwrite_without_flag(synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "shards"
    assert invoke(*run_args(synth, out, "--offsets", "1")).exit_code == 0
    result = invoke(*run_args(synth, out, "--offsets", "1"))
    assert result.exit_code != 0 and "--overwrite" in result.output
    result = invoke(*run_args(synth, out, "--offsets", "1", "--overwrite", "--num-shards", "1"))
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("instances-*"))) == 1


def test_run_rejects_unknown_estimator_and_bad_option(synth: Path, tmp_path: Path) -> None:
    result = invoke(*run_args(synth, tmp_path / "a", "--estimator", "raft"))
    assert result.exit_code != 0 and "available: " in result.output
    result = invoke(*run_args(synth, tmp_path / "b", "--estimator-option", "nonsense=1"))
    assert result.exit_code != 0 and "nonsense" in result.output
    assert not (tmp_path / "b").exists()  # nothing written before the options were checked


def test_validate_lists_problems_and_exits_nonzero(synth: Path, tmp_path: Path) -> None:
    assert invoke("validate", str(synth / "annotations.json")).exit_code == 0
    data = json.loads((synth / "annotations.json").read_text())
    labelled = [a for a in data["annotations"] if a.get("dp_x")]
    labelled[0]["dp_I"][2] = 40
    labelled[1]["dp_V"] = labelled[1]["dp_V"][:-3]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    result = invoke("validate", str(bad))
    assert result.exit_code == 1
    assert (
        f"annotation {labelled[0]['id']}" in result.output and "dp_I_out_of_range" in result.output
    )
    assert (
        f"annotation {labelled[1]['id']}" in result.output and "dp_length_mismatch" in result.output
    )
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    result = invoke("validate", str(broken))
    assert result.exit_code != 0 and "broken.json" in result.output


def test_multi_processing_workers_write_the_same_bytes(synth: Path, tmp_path: Path) -> None:
    """``--direct_num_workers 2 --direct_running_mode multi_processing`` reaches Beam and the
    output does not depend on the runner."""
    in_process, workers = tmp_path / "in_process", tmp_path / "workers"
    assert invoke(*run_args(synth, in_process, "--num-shards", "2")).exit_code == 0
    args = run_args(synth, workers, "--num-shards", "2")
    args = args[: args.index("--runner")] + args[args.index("--runner") + 2 :]
    args += ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "multi_processing" in result.output
    names = sorted(p.name for p in in_process.iterdir())
    assert names == sorted(p.name for p in workers.iterdir())
    for name in names:
        assert (in_process / name).read_bytes() == (workers / name).read_bytes(), name


def test_flownet2_flags_are_checked_before_anything_runs(synth: Path, tmp_path: Path) -> None:
    out = tmp_path / "never"
    result = CliRunner().invoke(main, run_args(synth, out, "--batch-size", "4"))
    assert result.exit_code == 2 and "--batch-size: only for --estimator flownet2" in result.output
    result = CliRunner().invoke(main, run_args(synth, out, "--estimator", "flownet2"))
    assert result.exit_code == 1 and "flownet2 needs a checkpoint: --checkpoint" in result.output
    result = CliRunner().invoke(
        main, run_args(synth, out, "--estimator", "flownet2", "--checkpoint", str(tmp_path / "x"))
    )
    assert result.exit_code == 1 and "checkpoint not found" in result.output
    assert not out.exists()


def test_flownet2_on_cuda_without_cuda_fails_before_writing(synth: Path, tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    checkpoint = tmp_path / "FlowNet2_checkpoint.pth.tar"
    checkpoint.write_bytes(b"not read: the device is checked first")
    out = tmp_path / "never"
    args = run_args(synth, out, "--estimator", "flownet2", "--checkpoint", str(checkpoint))
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "CUDA is not usable" in result.output and "--device cpu" in result.output
    assert not out.exists()


def test_only_local_runners_check_the_device_at_launch() -> None:
    from dptrack_pipeline.cli.options import runs_here as _runs_here

    assert _runs_here([]) and _runs_here(["--runner", "FnApiRunner"])
    assert _runs_here(["--runner=DirectRunner", "--direct_num_workers", "2"])
    assert not _runs_here(["--runner", "DataflowRunner", "--project", "p"])


def test_train_is_a_command_of_dptrack_build_and_dptrack_train_its_alias() -> None:
    from dptrack_pipeline.cli.train import main as train_main
    from dptrack_pipeline.cli.train import train

    result = CliRunner().invoke(main, ["train", "--help"])
    assert result.exit_code == 0, result.output
    assert "--equivariance" in result.output and "--gt-propagation" in result.output
    assert main.get_command(None, "train") is train
    with pytest.raises(SystemExit) as exit_info:
        train_main(["--help"])
    assert exit_info.value.code == 0
