"""The estimator registry: creation by name, option checking, boundary checks, pickling."""

from __future__ import annotations

import json
import pickle
from collections.abc import Sequence

import cv2
import numpy as np
import pytest

from dptrack_pipeline.flow import available_estimators, create_estimator, registry
from dptrack_pipeline.flow.opencv import DISFlowEstimator, FarnebackFlowEstimator
from dptrack_pipeline.flow.registry import FlowEstimator, register_estimator


def _textured_pair(height: int = 48, width: int = 64, shift: int = 2) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 256, (height, width + shift, 3), np.uint8), (5, 5), 1)
    return base[:, shift:].copy(), base[:, :-shift].copy()


@pytest.fixture
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let a test register estimators without leaking them into the real registry."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_builtins_are_registered() -> None:
    assert {"dis", "farneback"} <= set(available_estimators())
    assert available_estimators() == sorted(available_estimators())
    assert isinstance(create_estimator("dis"), DISFlowEstimator)
    assert isinstance(create_estimator("farneback"), FarnebackFlowEstimator)
    assert create_estimator("dis").name == "dis"


def test_params_are_resolved_and_json_serialisable() -> None:
    dis = create_estimator("dis", preset="fast")
    assert dis.params() == {"preset": "fast", "threads": None}
    farneback = create_estimator("farneback", levels=3)
    params = farneback.params()
    assert params["levels"] == 3
    assert params["pyr_scale"] == 0.5 and params["winsize"] == 15 and params["poly_sigma"] == 1.2
    assert json.loads(json.dumps(params)) == params
    params["levels"] = 99  # a copy: the estimator is unchanged
    assert farneback.params()["levels"] == 3


def test_options_must_be_json_serialisable() -> None:
    with pytest.raises(TypeError, match="JSON-serialisable"):
        create_estimator("dis", threads=np.int64(2))


def test_unknown_name_lists_available() -> None:
    with pytest.raises(ValueError, match="unknown flow estimator 'raft'") as info:
        create_estimator("raft")
    assert "dis" in str(info.value) and "farneback" in str(info.value)


def test_unknown_option_is_named() -> None:
    with pytest.raises(TypeError, match="'presett'") as info:
        create_estimator("dis", presett="fast")
    assert "preset" in str(info.value).split("accepted")[1]


@pytest.mark.parametrize(
    "name, options, option",
    [
        ("dis", {"preset": "slow"}, "preset"),
        ("dis", {"threads": -1}, "threads"),
        ("farneback", {"poly_n": 6}, "poly_n"),
        ("farneback", {"pyr_scale": 1.5}, "pyr_scale"),
        ("farneback", {"levels": 0}, "levels"),
        ("farneback", {"poly_sigma": "1.2"}, "poly_sigma"),
    ],
)
def test_bad_option_value_is_named(name: str, options: dict, option: str) -> None:
    with pytest.raises(ValueError, match=f"'{option}'"):
        create_estimator(name, **options)


@pytest.mark.parametrize("name", ["dis", "farneback"])
def test_estimators_pickle_before_and_after_setup(name: str) -> None:
    first, second = _textured_pair()
    estimator = create_estimator(name)
    restored = pickle.loads(pickle.dumps(estimator))
    assert restored.params() == estimator.params()

    estimator.setup()
    flow = estimator.estimate(first, second)
    restored_after = pickle.loads(pickle.dumps(estimator))  # the cv2 object is dropped
    np.testing.assert_array_equal(restored_after.estimate(first, second), flow)
    np.testing.assert_array_equal(restored.estimate(first, second), flow)
    # the original keeps working after being pickled
    np.testing.assert_array_equal(estimator.estimate(first, second), flow)


def test_setup_is_idempotent_and_threads_option_applies() -> None:
    before = cv2.getNumThreads()
    try:
        estimator = create_estimator("dis", threads=1)
        estimator.setup()
        dis_object = estimator._dis
        estimator.setup()
        assert estimator._dis is dis_object
        assert cv2.getNumThreads() == 1
    finally:
        cv2.setNumThreads(before)


def test_default_threads_leaves_opencv_alone() -> None:
    before = cv2.getNumThreads()
    create_estimator("farneback").setup()
    assert cv2.getNumThreads() == before


@pytest.mark.parametrize(
    "pair, message",
    [
        ((np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8)), r"\(H, W, 3\).*\(8, 8\)"),
        ((np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 4), np.uint8)), r"got \(8, 8, 4\)"),
        ((np.zeros((8, 8, 3), np.float32), np.zeros((8, 8, 3), np.float32)), "uint8, got float32"),
        ((np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8)), "same size"),
    ],
)
def test_bad_inputs_say_expected_and_got(pair: tuple, message: str) -> None:
    estimator = create_estimator("dis")
    with pytest.raises(ValueError, match=message):
        estimator.estimate_batch([pair])


def test_batch_must_be_a_sequence_of_pairs() -> None:
    estimator = create_estimator("dis")
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(TypeError, match="sequence"):
        estimator.estimate_batch(np.zeros((1, 2, 8, 8, 3), np.uint8))
    with pytest.raises(TypeError, match="pair 0"):
        estimator.estimate_batch([(image, image, image)])
    assert estimator.estimate_batch([]) == []


def test_register_custom_estimator(isolated_registry: None) -> None:
    @register_estimator("constant")
    class ConstantFlow(FlowEstimator):
        default_options = {"dx": 1.0, "dy": 0.0}
        preferred_batch_size = 4

        def estimate_batch(self, pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> list:
            checked = self.check_pairs(pairs)
            self.setup()
            flows = [
                np.broadcast_to(
                    np.array([self.options["dx"], self.options["dy"]], np.float32),
                    (*first.shape[:2], 2),
                )
                for first, _ in checked
            ]
            return self.check_flows(flows, checked)

    assert "constant" in available_estimators()
    estimator = create_estimator("constant", dy=2.0)
    assert estimator.name == "constant" and estimator.preferred_batch_size == 4
    small, large = np.zeros((5, 7, 3), np.uint8), np.zeros((9, 4, 3), np.uint8)
    flows = estimator.estimate_batch([(small, small), (large, large)])
    assert [f.shape for f in flows] == [(5, 7, 2), (9, 4, 2)]
    assert all(f.dtype == np.float32 and f.flags.c_contiguous for f in flows)
    np.testing.assert_array_equal(flows[1][3, 2], [1.0, 2.0])

    with pytest.raises(ValueError, match="already registered"):

        @register_estimator("constant")
        class Other(ConstantFlow):
            pass

    with pytest.raises(TypeError, match="not a FlowEstimator"):
        register_estimator("bad")(object)


def test_check_flows_catches_a_wrong_output() -> None:
    image = np.zeros((6, 5, 3), np.uint8)
    with pytest.raises(ValueError, match=r"expected shape \(6, 5, 2\), got \(5, 6, 2\)"):
        FlowEstimator.check_flows([np.zeros((5, 6, 2), np.float32)], [(image, image)])
    with pytest.raises(ValueError, match="expected 1 flows"):
        FlowEstimator.check_flows([], [(image, image)])
