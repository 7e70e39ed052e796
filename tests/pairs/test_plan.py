"""Anchors, pairs, flows and the streaming release rules of ``dptrack-build pairs``."""

from __future__ import annotations

import itertools

import pytest

from dptrack_pipeline.pairs.plan import (
    CHAINED,
    DIRECT,
    anchor_flows,
    anchor_frames,
    anchor_frames_needed,
    chain_steps,
    chunk_anchors,
    expected_pair_count,
    flows_needed,
    frames_needed,
    pair_offsets,
    schedule_chunk,
)


def _brute_force_pairs(num_frames: int, max_offset: int, stride: int) -> list[tuple[int, int]]:
    """Every directed pair (T, T + k), T an anchor, 1 <= |k| <= K, both frames in the video."""
    return [
        (t, t + k)
        for t in range(0, max(0, num_frames), stride)
        for k in range(-max_offset, max_offset + 1)
        if k != 0 and 0 <= t + k < num_frames
    ]


# --------------------------------------------------------------------------- anchors and pairs


def test_anchor_frames() -> None:
    assert anchor_frames(10, 1) == list(range(10))
    assert anchor_frames(10, 3) == [0, 3, 6, 9]
    assert anchor_frames(9, 3) == [0, 3, 6]
    assert anchor_frames(5, 7) == [0]
    assert anchor_frames(1, 1) == [0]
    assert anchor_frames(0, 1) == []
    assert anchor_frames(-3, 2) == []


@pytest.mark.parametrize("stride", [0, -1])
def test_anchor_frames_rejects_bad_stride(stride: int) -> None:
    with pytest.raises(ValueError, match="stride"):
        anchor_frames(10, stride)


def test_pair_offsets_order() -> None:
    assert pair_offsets(5, 20, 3) == [-1, 1, -2, 2, -3, 3]
    assert pair_offsets(5, 20, 1) == [-1, 1]
    assert pair_offsets(5, 20, 0) == []


def test_pair_offsets_bounds() -> None:
    assert pair_offsets(0, 20, 3) == [1, 2, 3]
    assert pair_offsets(1, 20, 3) == [-1, 1, 2, 3]
    assert pair_offsets(19, 20, 3) == [-1, -2, -3]
    assert pair_offsets(18, 20, 3) == [-1, 1, -2, -3]
    assert pair_offsets(1, 3, 3) == [-1, 1]
    assert pair_offsets(0, 1, 3) == []


def test_pair_offsets_stay_inside_the_video() -> None:
    for n, k in itertools.product(range(0, 9), range(0, 5)):
        for anchor in range(n):
            offsets = pair_offsets(anchor, n, k)
            assert all(0 <= anchor + o < n and 1 <= abs(o) <= k for o in offsets)
            assert len(set(offsets)) == len(offsets)
            # every in-range partner is there, ordered by |k| then sign
            assert offsets == sorted(offsets, key=lambda o: (abs(o), o))
            expected = {o for o in range(-k, k + 1) if o and 0 <= anchor + o < n}
            assert set(offsets) == expected


def test_expected_pair_count_matches_brute_force() -> None:
    for n, k, s in itertools.product(range(0, 26), range(1, 6), range(1, 9)):
        expected = len(_brute_force_pairs(n, k, s))
        assert expected_pair_count(n, k, s) == expected, (n, k, s)
        # and pair_offsets agrees with the same enumeration
        assert sum(len(pair_offsets(a, n, k)) for a in anchor_frames(n, s)) == expected


@pytest.mark.parametrize(
    ("n", "k", "s", "pairs"),
    [
        (0, 3, 1, 0),  # no frame
        (1, 3, 1, 0),  # one frame: no partner
        (2, 3, 1, 2),  # N < K: (0, 1) and (1, 0)
        (3, 5, 1, 6),  # N < K: every ordered pair of 3 frames
        (4, 3, 10, 3),  # S > N: anchor 0 only, with 1, 2, 3
        (10, 3, 1, 2 * (9 + 8 + 7)),
    ],
)
def test_expected_pair_count_edge_cases(n: int, k: int, s: int, pairs: int) -> None:
    assert expected_pair_count(n, k, s) == pairs


def test_expected_pair_count_inner_frames_have_2k_pairs() -> None:
    # the module docstring's "6 pairs per inner frame" at K = 3, S = 1
    n, k = 1000, 3
    assert expected_pair_count(n, k, 1) == 6 * n - 2 * (1 + 2 + 3)


# --------------------------------------------------------------------------- flows


def test_chain_steps() -> None:
    assert chain_steps(5, 2) == ([(5, 6), (6, 7)], [(7, 6), (6, 5)])
    assert chain_steps(5, 1) == ([(5, 6)], [(6, 5)])
    assert chain_steps(5, -3) == ([(5, 4), (4, 3), (3, 2)], [(2, 3), (3, 4), (4, 5)])


def test_chain_steps_are_connected_one_step_paths() -> None:
    for anchor, offset in itertools.product(range(0, 6), (-4, -2, -1, 1, 3)):
        fwd, bwd = chain_steps(anchor, offset)
        assert len(fwd) == len(bwd) == abs(offset)
        assert fwd[0][0] == anchor and fwd[-1][1] == anchor + offset
        assert bwd[0][0] == anchor + offset and bwd[-1][1] == anchor
        for steps in (fwd, bwd):
            assert all(abs(b - a) == 1 for a, b in steps)
            assert all(p[1] == q[0] for p, q in zip(steps[:-1], steps[1:], strict=True))
        assert bwd == [(b, a) for a, b in reversed(fwd)]


def test_chain_steps_rejects_zero_offset() -> None:
    with pytest.raises(ValueError, match="offset"):
        chain_steps(3, 0)


def test_anchor_flows_direct() -> None:
    assert anchor_flows(5, 20, 2, DIRECT) == [
        (5, 4),
        (4, 5),
        (5, 6),
        (6, 5),
        (5, 3),
        (3, 5),
        (5, 7),
        (7, 5),
    ]
    assert anchor_flows(0, 20, 2, DIRECT) == [(0, 1), (1, 0), (0, 2), (2, 0)]
    assert anchor_flows(0, 1, 2, DIRECT) == []


def test_anchor_flows_chained_are_distinct_one_step_flows() -> None:
    flows = anchor_flows(5, 20, 3, CHAINED)
    assert len(flows) == len(set(flows))
    assert set(flows) == {(t, t + d) for t in range(2, 9) for d in (-1, 1) if 2 <= t + d <= 8}
    assert len(flows) == 2 * 2 * 3  # frames 2..8: 6 edges, both directions
    assert set(anchor_flows(0, 20, 3, CHAINED)) == {(0, 1), (1, 2), (2, 3), (3, 2), (2, 1), (1, 0)}


def test_anchor_flows_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="mode"):
        anchor_flows(0, 10, 3, "sideways")


def test_direct_flows_serve_each_pair_both_ways() -> None:
    n, k = 30, 3
    anchors = anchor_frames(n, 1)
    pairs = _brute_force_pairs(n, k, 1)
    flows = flows_needed(anchors, n, k, DIRECT)
    # every pair (a, b) needs a -> b and b -> a; every flow a -> b serves (a, b) and (b, a)
    assert flows == {(a, b) for a, b in pairs} | {(b, a) for a, b in pairs}
    for a, b in flows:
        assert sum(1 for p in pairs if set(p) == {a, b}) == 2
    assert len(flows) == len(pairs)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_direct_flows_equal_pairs_at_stride_one(k: int) -> None:
    for n in [0, 1, 2, 2 * k, 2 * k + 1, 2 * k + 5, 40]:
        anchors = anchor_frames(n, 1)
        assert len(flows_needed(anchors, n, k, DIRECT)) == expected_pair_count(n, k, 1), n


@pytest.mark.parametrize("k", [1, 2, 3, 6])
def test_chained_flows_are_two_per_frame(k: int) -> None:
    for n in [2, 3, k + 1, 10, 57]:
        flows = flows_needed(anchor_frames(n, 1), n, k, CHAINED)
        assert len(flows) == 2 * (n - 1), n
        assert flows == {(t, t + 1) for t in range(n - 1)} | {(t + 1, t) for t in range(n - 1)}
    assert flows_needed(anchor_frames(1, 1), 1, k, CHAINED) == set()


def test_chained_is_a_third_of_direct_at_k3() -> None:
    n = 1000
    anchors = anchor_frames(n, 1)
    direct = len(flows_needed(anchors, n, 3, DIRECT))
    chained = len(flows_needed(anchors, n, 3, CHAINED))
    assert chained / direct == pytest.approx(1 / 3, rel=0.01)


def test_frames_needed() -> None:
    assert anchor_frames_needed(5, 20, 2) == [3, 4, 5, 6, 7]
    assert anchor_frames_needed(0, 20, 2) == [0, 1, 2]
    assert anchor_frames_needed(0, 1, 2) == [0]
    assert frames_needed([0, 10], 20, 2) == [0, 1, 2, 8, 9, 10, 11, 12]
    assert frames_needed([], 20, 2) == []


def test_chunk_anchors() -> None:
    assert chunk_anchors([0, 2, 4, 6, 8], 2) == [(0, 2), (4, 6), (8,)]
    assert chunk_anchors([0, 2, 4], 5) == [(0, 2, 4)]
    assert chunk_anchors([], 5) == []
    with pytest.raises(ValueError, match="chunk_size"):
        chunk_anchors([0, 1], 0)


# --------------------------------------------------------------------------- streaming release


def _stream(num_frames: int, max_offset: int, stride: int, mode: str) -> dict[str, int]:
    """Replay :func:`~dptrack_pipeline.pairs.worker.process_chunk`'s decode/compute/release loop
    (the steps of :func:`schedule_chunk`) over every anchor of a video and check the releases
    never drop what is used later.

    Returns the most frames and flows held at once (just before an anchor's pairs are cut).
    """
    anchors = anchor_frames(num_frames, stride)
    to_decode = frames_needed(anchors, num_frames, max_offset)
    frames: set[int] = set()
    flows: set[tuple[int, int]] = set()
    decoded: list[int] = []
    computed: set[tuple[int, int]] = set()
    most = {"frames": 0, "flows": 0}
    for step in schedule_chunk(anchors, num_frames, max_offset, mode):
        anchor = step.source
        for f in step.decode:
            assert f not in decoded
            decoded.append(f)
            frames.add(f)
        for pair in step.flows:
            assert pair not in computed, f"flow {pair} computed twice"
            computed.add(pair)
            flows.add(pair)
        needed_flows = set(anchor_flows(anchor, num_frames, max_offset, mode))
        assert needed_flows <= flows, f"flows {needed_flows - flows} released before {anchor}"
        needed_frames = anchor_frames_needed(anchor, num_frames, max_offset)
        missing = set(needed_frames) - frames
        assert not missing, f"frames {missing} released before anchor {anchor} read them"
        most["frames"] = max(most["frames"], len(frames))
        most["flows"] = max(most["flows"], len(flows))
        frames -= set(step.release_frames)
        flows -= set(step.release_flows)
    assert computed == flows_needed(anchors, num_frames, max_offset, mode)
    assert decoded == to_decode  # front to back, each frame once
    assert not frames and not flows  # everything released after the last anchor
    return most


@pytest.mark.parametrize("mode", [DIRECT, CHAINED])
@pytest.mark.parametrize(("k", "stride"), [(1, 1), (3, 1), (3, 2), (2, 3), (3, 8), (5, 1)])
def test_release_rules_are_safe_and_bounded(mode: str, k: int, stride: int) -> None:
    short = _stream(50, k, stride, mode)
    long = _stream(200, k, stride, mode)
    assert short == long  # held frames and flows do not grow with the video
    assert long["frames"] <= 2 * k + 1
    if mode == CHAINED:
        assert long["flows"] <= 4 * k
    else:
        # direct flows of the anchor itself (4K) plus the earlier anchors' flows that reach it
        assert long["flows"] <= k * (k + 1) + 2 * k


def test_release_at_stride_one_holds_the_window_exactly() -> None:
    # S = 1: frames T - K .. T + K are in memory when anchor T is processed
    # chained: the one-step flows of T - K .. T + K, released right after their last anchor
    assert _stream(60, 3, 1, CHAINED) == {"frames": 7, "flows": 4 * 3}
    # direct: flows between earlier anchors and T..T+K-1 still held (K(K + 1)) plus the 2K new
    # ones of T: K(K + 3), quadratic in K (18 at K = 3, not the "about 4K" of the docstring)
    for k in (1, 2, 3, 5):
        assert _stream(60, k, 1, DIRECT) == {"frames": 2 * k + 1, "flows": k * (k + 3)}


def test_release_short_videos() -> None:
    for n, k, s, mode in itertools.product(range(0, 8), (1, 3), (1, 2), (DIRECT, CHAINED)):
        _stream(n, k, s, mode)


def _released_after(anchors: list[int], max_offset: int, mode: str) -> dict:
    """``frame or flow -> the anchor after which it is released``."""
    out: dict = {}
    for step in schedule_chunk(anchors, 30, max_offset, mode):
        for item in (*step.release_frames, *step.release_flows):
            out[item] = step.source
    return out


def test_frames_are_released_after_their_last_anchor() -> None:
    released = _released_after(list(range(30)), 3, DIRECT)
    # Anchor 10 still reads frame 7 (10 - 3), not frame 6: 6 goes right after anchor 9.
    assert released[6] == 9 and released[7] == 10 and released[12] == 15


def test_flows_are_released_after_their_last_anchor() -> None:
    direct = _released_after(list(range(30)), 3, DIRECT)
    # A direct flow serves the anchors at its two ends: released after the later one.
    assert direct[(9, 10)] == direct[(10, 9)] == 10
    assert direct[(8, 9)] == 9
    chained = _released_after(list(range(30)), 3, CHAINED)
    # A one-step flow serves every anchor within K of its ends.
    assert chained[(6, 7)] == chained[(7, 6)] == 9
    assert chained[(5, 6)] == 8
