"""The registered ``"flownet2"`` estimator: options, device rules, sharing, batching."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dptrack_pipeline.flow import available_estimators, create_estimator


def _pairs(sizes: list[tuple[int, int]], seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    pairs = []
    for height, width in sizes:
        first = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        pairs.append((first, np.roll(first, 3, axis=1)))
    return pairs


@pytest.fixture(scope="module")
def estimator(flownet2_checkpoint: Path):
    return create_estimator(
        "flownet2", checkpoint=str(flownet2_checkpoint), device="cpu", batch_size=2
    )


def test_registered_without_importing_torch() -> None:
    assert "flownet2" in available_estimators()
    code = "import sys, dptrack_pipeline.flow; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_odd_sizes_give_flows_of_the_input_size(estimator) -> None:
    # Mixed sizes in one call: grouped by size, chunked by batch_size, returned in input order.
    sizes = [(100, 140), (64, 64), (100, 140), (100, 140), (37, 51)]
    pairs = _pairs(sizes)
    flows = estimator.estimate_batch(pairs)
    assert [f.shape for f in flows] == [(h, w, 2) for h, w in sizes]
    assert all(f.dtype == np.float32 and np.isfinite(f).all() for f in flows)
    # Batching does not change a pair's answer.
    alone = estimator.estimate(*pairs[2])
    np.testing.assert_allclose(alone, flows[2], atol=1e-4 * max(1.0, np.abs(alone).max()))


def test_pad_fit_gives_the_input_size(flownet2_checkpoint: Path) -> None:
    padded = create_estimator(
        "flownet2", checkpoint=str(flownet2_checkpoint), device="cpu", fit="pad"
    )
    assert padded.estimate(*_pairs([(100, 140)])[0]).shape == (100, 140, 2)


def test_one_model_per_process_and_pickling_drops_it(estimator, flownet2_checkpoint) -> None:
    estimator.setup()
    twin = create_estimator(
        "flownet2", checkpoint=str(flownet2_checkpoint), device="cpu", batch_size=7
    )
    twin.setup()
    assert twin._shared is estimator._shared  # batch size does not shape the model
    shipped = pickle.dumps(estimator)
    assert len(shipped) < 10_000  # options only, not 650 MB of weights
    copy = pickle.loads(shipped)
    assert copy._shared is None
    copy.setup()
    assert copy._shared is estimator._shared


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({}, "needs a checkpoint"),
        ({"device": "gpu"}, "'device' must be"),
        ({"precision": "int8"}, "'precision' must be"),
        ({"batch_size": 0}, "'batch_size' must be"),
        ({"fit": "crop"}, "'fit' must be"),
        ({"correlation": "cuda"}, "'correlation' must be"),
        ({"compile": "yes"}, "'compile' must be"),
    ],
)
def test_bad_options_are_named(options: dict, match: str, flownet2_checkpoint: Path) -> None:
    options = {"checkpoint": str(flownet2_checkpoint), **options} if options else options
    with pytest.raises(ValueError, match=match):
        create_estimator("flownet2", **options)


def test_missing_checkpoint_is_found_at_runtime_not_at_construction() -> None:
    # A launcher for remote workers may not have a checkpoint baked into the workers' image.
    estimator = create_estimator("flownet2", checkpoint="/no/such/FlowNet2.pth.tar", device="cpu")
    with pytest.raises(RuntimeError, match="checkpoint not found: /no/such/FlowNet2.pth.tar"):
        estimator.check_runtime()
    with pytest.raises(ValueError, match="not found"):
        estimator.setup()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_fails_loudly(flownet2_checkpoint: Path) -> None:
    estimator = create_estimator("flownet2", checkpoint=str(flownet2_checkpoint))
    assert estimator.params()["device"] == "cuda"  # the default
    with pytest.raises(RuntimeError, match="CUDA is not usable.*--device cpu"):
        estimator.check_runtime()
    with pytest.raises(RuntimeError, match="CUDA is not usable"):
        estimator.estimate(*_pairs([(64, 64)])[0])


@pytest.mark.slow
def test_compiled_model_gives_the_same_flow(flownet2_checkpoint: Path) -> None:
    # torch.compile on the CPU takes minutes (about 165 s here), hence slow; on a GPU it pays
    # back over a long run of one frame size.
    pair = _pairs([(64, 128)])[0]
    options = {"checkpoint": str(flownet2_checkpoint), "device": "cpu"}
    compiled = create_estimator("flownet2", compile=True, **options).estimate(*pair)
    eager = create_estimator("flownet2", **options).estimate(*pair)
    np.testing.assert_allclose(compiled, eager, atol=1e-4 * max(1.0, np.abs(eager).max()))
