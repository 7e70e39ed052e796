"""Strict checkpoint loading, and errors that name the offending tensors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from dptrack_pipeline.flow.flownet2.checkpoint import (
    CheckpointError,
    check_state_dict,
    expected_shapes,
    load_flownet2,
    read_state_dict,
)
from dptrack_pipeline.flow.flownet2.model import FlowNet2


@pytest.fixture(scope="module")
def random_state(flownet2_checkpoint: Path) -> dict[str, torch.Tensor]:
    return read_state_dict(str(flownet2_checkpoint))


def test_random_checkpoint_with_public_names_loads_strictly(flownet2_checkpoint: Path) -> None:
    model = load_flownet2(str(flownet2_checkpoint))
    assert isinstance(model, FlowNet2) and not model.training
    saved = torch.load(flownet2_checkpoint, weights_only=True)
    assert set(saved) == {"epoch", "state_dict", "best_EPE"}  # the public file's layout
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, saved["state_dict"][name]), name


def test_renamed_tensor_is_named(random_state: dict, tmp_path: Path) -> None:
    state = dict(random_state)
    state["flownetc.conv_redirect.0.weight"] = state.pop("flownetc.conv_redir.0.weight")
    path = tmp_path / "renamed.pth.tar"
    torch.save({"epoch": 1, "state_dict": state, "best_EPE": 2.0}, path)
    with pytest.raises(CheckpointError) as info:
        load_flownet2(str(path))
    message = str(info.value)
    assert "1 missing: flownetc.conv_redir.0.weight" in message
    assert "1 unexpected: flownetc.conv_redirect.0.weight" in message
    assert str(path) in message


def test_reshaped_tensor_is_named_with_both_shapes(random_state: dict) -> None:
    state = dict(random_state)
    state["flownetfusion.predict_flow0.weight"] = torch.zeros(2, 32, 3, 3)
    with pytest.raises(CheckpointError) as info:
        check_state_dict(state, expected_shapes())
    assert (
        "1 mis-shaped: flownetfusion.predict_flow0.weight (2, 32, 3, 3) "
        "(expected (2, 16, 3, 3))" in str(info.value)
    )


def test_many_problems_are_summarised() -> None:
    with pytest.raises(CheckpointError, match=r"220 missing: flownetc.conv1.0.weight, .* and 217"):
        check_state_dict({"x": torch.zeros(1)}, expected_shapes())


def test_data_parallel_prefix_and_bare_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "bare.pth"
    torch.save({"module.a": torch.ones(2), "module.b": torch.zeros(1)}, path)
    assert sorted(read_state_dict(str(path))) == ["a", "b"]


def test_numpy_scalar_metadata_is_accepted_without_trust(tmp_path: Path) -> None:
    path = tmp_path / "numpy_meta.pth.tar"
    torch.save({"epoch": 3, "state_dict": {"a": torch.ones(1)}, "best_EPE": np.float64(2.1)}, path)
    assert list(read_state_dict(str(path))) == ["a"]


class _Arbitrary:
    pass


def test_arbitrary_pickles_need_trust(tmp_path: Path) -> None:
    path = tmp_path / "object.pth"
    torch.save({"state_dict": {"a": torch.ones(1)}, "extra": _Arbitrary()}, path)
    with pytest.raises(CheckpointError, match="trust_checkpoint=true"):
        read_state_dict(str(path))
    assert list(read_state_dict(str(path), trust=True)) == ["a"]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"not a checkpoint at all", "not a readable torch checkpoint"),
        (pickle.dumps([1, 2, 3]), "not a readable torch checkpoint|expected a dict"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match):
        read_state_dict(str(path))


def test_missing_file_and_non_tensor_entries(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        read_state_dict(str(tmp_path / "nope.pth"))
    path = tmp_path / "ints.pth"
    torch.save({"state_dict": {"a": 1}}, path)
    with pytest.raises(CheckpointError, match="not tensors"):
        read_state_dict(str(path))
