"""One chunk of a ``pairs`` job on a synthetic translating video with exact flows."""

from __future__ import annotations

import pickle
import threading
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from dptrack_pipeline.crops import crop_image
from dptrack_pipeline.flow.registry import FlowEstimator
from dptrack_pipeline.frames import FRAME_MISSING
from dptrack_pipeline.pairs.people import PersonEntry, default_box, people_for_frames, person_box
from dptrack_pipeline.pairs.plan import (
    CHAINED,
    DIRECT,
    anchor_frames,
    chunk_anchors,
    expected_pair_count,
    flows_needed,
)
from dptrack_pipeline.pairs.videos import KIND_FOLDER, VideoSpec, count_frames
from dptrack_pipeline.pairs.worker import (
    BOX_DEFAULT,
    BOX_FOLLOWED,
    BOX_PEOPLE,
    BOX_PEOPLE_NEAREST,
    CHAIN_BROKEN,
    FLOW_QUANTUM,
    FRAME_SIZE_MISMATCH,
    STAGE_DECODE,
    STAGE_PAIRS,
    TOO_FEW_VALID,
    CropOutput,
    PairOutput,
    PairReject,
    PairsChunk,
    PairSettings,
    as_box,
    follow_box,
    process_chunk,
)

WIDTH, HEIGHT = 56, 40
SHIFT = np.array([2.0, 1.0])  # the picture moves by (+2, +1) px per frame
NUM_FRAMES = 8
CROP = 32


class ShiftEstimator(FlowEstimator):
    """Exact flows of the synthetic video: frames are recognised by their pixels, and the flow
    from frame ``a`` to frame ``b`` is ``(b - a) * SHIFT`` everywhere (times ``gain``)."""

    name = "test_shift"

    def __init__(self, frames: Sequence[np.ndarray], gain: float = 1.0) -> None:
        super().__init__()
        self.index_of = {f.tobytes(): i for i, f in enumerate(frames)}
        self.gain = gain
        self.calls: list[tuple[int, int]] = []

    def estimate_batch(self, pairs):
        out = []
        for first, second in self.check_pairs(pairs):
            a, b = self.index_of[first.tobytes()], self.index_of[second.tobytes()]
            self.calls.append((a, b))
            flow = np.empty(first.shape[:2] + (2,), np.float32)
            flow[...] = (b - a) * SHIFT * self.gain
            out.append(flow)
        return out


def _frames(num_frames: int = NUM_FRAMES) -> list[np.ndarray]:
    """RGB frames of a smooth random texture translated by ``SHIFT`` per frame."""
    rng = np.random.default_rng(0)
    margin = 40
    texture = rng.integers(0, 256, (HEIGHT + 2 * margin, WIDTH + 2 * margin, 3), dtype=np.uint8)
    texture = cv2.GaussianBlur(texture, (0, 0), 1.5)
    frames = []
    for t in range(num_frames):
        dx, dy = (t * SHIFT).astype(int)
        # frame t at p shows the texture at p - t * SHIFT
        frames.append(np.ascontiguousarray(texture[margin - dy :, margin - dx :][:HEIGHT, :WIDTH]))
    return frames


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return _frames()


@pytest.fixture
def video(tmp_path: Path, frames: list[np.ndarray]) -> tuple[VideoSpec, tuple[str, ...]]:
    folder = tmp_path / "walk"
    folder.mkdir()
    for t, frame in enumerate(frames):
        assert cv2.imwrite(str(folder / f"{t:03d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    spec = VideoSpec("walk", str(folder), KIND_FOLDER)
    counted = count_frames(spec)
    assert (counted.num_frames, counted.width, counted.height) == (NUM_FRAMES, WIDTH, HEIGHT)
    return spec, counted.frame_files


def _chunk(video, anchors=None, people=None, targets=None) -> PairsChunk:
    spec, files = video
    return PairsChunk(
        video=spec,
        num_frames=NUM_FRAMES,
        anchors=tuple(anchor_frames(NUM_FRAMES, 1) if anchors is None else anchors),
        people=people,
        targets=targets or {},
        frame_files=files,
    )


def _run(chunk, frames, helper=None, finish=None, **settings):
    settings = {"max_offset": 2, "crop_size": CROP, "estimator": "test_shift", **settings}
    estimator = ShiftEstimator(frames, gain=settings.pop("gain", 1.0))
    counters: Counter = Counter()
    outputs = list(
        process_chunk(chunk, estimator, PairSettings(**settings), counters, None, helper, finish)
    )
    return outputs, counters, estimator


def _split(outputs):
    crops = [o for o in outputs if isinstance(o, CropOutput)]
    pairs = [o for o in outputs if isinstance(o, PairOutput)]
    rejects = [o for o in outputs if isinstance(o, PairReject)]
    assert len(crops) + len(pairs) + len(rejects) == len(outputs)
    return crops, pairs, rejects


def _key(out) -> tuple[int, int, int]:
    row = out.row
    if isinstance(out, PairOutput):
        return (row["frame_a"], row["person"], row["offset"])
    return (row["frame_id"], row["track_id"], row["offset"])


def _check_accounting(chunk: PairsChunk, outputs, max_offset: int) -> None:
    """Every planned pair ends as exactly one PairOutput or PairReject."""
    _, pairs, rejects = _split(outputs)
    keys = [_key(o) for o in pairs + rejects]
    assert len(keys) == len(set(keys)) == chunk.planned_pairs(max_offset)
    persons = {a: [0] for a in chunk.planned_anchors()}
    if chunk.people is not None:
        persons = {a: [e.person for e, _ in chunk.people[a]] for a in chunk.planned_anchors()}
    expected = {
        (a, p, k)
        for a, ps in persons.items()
        for p in ps
        for k in range(-max_offset, max_offset + 1)
        if k and 0 <= a + k < chunk.num_frames
    }
    assert set(keys) == expected


def _check_crops(outputs, frames) -> None:
    """Each (frame, box) is emitted once, before the first pair that reads it, with the right
    pixels; every emitted crop is read by some pair; valid pixels land inside crop B."""
    seen: set = set()
    used: set = set()
    for out in outputs:
        if isinstance(out, CropOutput):
            assert out.key not in seen
            seen.add(out.key)
            assert out.crop.shape == (CROP, CROP, 3) and out.crop.dtype == np.uint8
            np.testing.assert_array_equal(out.crop, crop_image(frames[out.frame], out.box, CROP))
        elif isinstance(out, PairOutput):
            for frame, box in (("frame_a", "crop_box_a"), ("frame_b", "crop_box_b")):
                key = (out.row["video_id"], out.row[frame], tuple(out.row[box]))
                assert key in seen
                used.add(key)
            # valid pixels land inside crop B, between its outermost pixel centres
            c = np.arange(CROP)
            x = (out.flow[..., 0] + c[None, :])[out.valid]
            y = (out.flow[..., 1] + c[:, None])[out.valid]
            assert ((x >= 0) & (x <= CROP - 1) & (y >= 0) & (y <= CROP - 1)).all()
    assert used == seen


def _expected_valid(box_a, box_b, shift, size: int = CROP) -> np.ndarray:
    """Which crop-A pixels are valid under a pure translation by ``shift`` (exact flows): inside
    frame A, landing inside frame B and inside crop B (between the outermost pixel centres)."""
    c = np.arange(size)
    valid = np.ones((size, size), bool)
    for axis, limit in ((0, WIDTH - 1), (1, HEIGHT - 1)):
        start, side = box_a[axis], box_a[axis + 2]
        source = start + (c + 0.5) * side / size
        target = source + shift[axis]
        in_crop_b = (target - box_b[axis]) * size / box_b[axis + 2] - 0.5
        ok = (source >= 0) & (source <= limit) & (target >= 0) & (target <= limit)
        ok &= (in_crop_b >= 0) & (in_crop_b <= size - 1)
        valid &= ok[None, :] if axis == 0 else ok[:, None]
    return valid


# --------------------------------------------------------------------------- default boxes


def test_direct_default_boxes(video, frames) -> None:
    chunk = _chunk(video)
    outputs, counters, estimator = _run(chunk, frames)
    crops, pairs, rejects = _split(outputs)
    _check_accounting(chunk, outputs, 2)
    assert rejects == []
    assert len(pairs) == expected_pair_count(NUM_FRAMES, 2, 1)
    _check_crops(outputs, frames)
    assert len(crops) == NUM_FRAMES  # one default crop per frame, shared by its pairs

    needed = flows_needed(chunk.anchors, NUM_FRAMES, 2, DIRECT)
    assert len(estimator.calls) == len(set(estimator.calls))  # each flow estimated once
    assert set(estimator.calls) == needed
    assert counters == Counter(
        frames_decoded=NUM_FRAMES,
        flows_computed=len(needed),
        anchors_done=NUM_FRAMES,
        pairs_made=len(pairs),
    )

    box = as_box(default_box(WIDTH, HEIGHT))
    assert box == (7.5, -0.5, 40.0, 40.0)
    scale = CROP / 40.0
    for out in pairs:
        row = out.row
        k = row["offset"]
        assert row["frame_b"] == row["frame_a"] + k
        assert row["video_id"] == out.video_id == "walk"
        assert (row["person"], row["mode"], row["estimator"]) == (0, DIRECT, "test_shift")
        assert (row["box_source_a"], row["box_source_b"]) == (BOX_DEFAULT, BOX_DEFAULT)
        assert tuple(row["crop_box_a"]) == tuple(row["crop_box_b"]) == box
        assert (row["frame_width"], row["frame_height"]) == (WIDTH, HEIGHT)
        assert out.flow.shape == (CROP, CROP, 2) and out.flow.dtype == np.float32
        assert out.valid.shape == (CROP, CROP) and out.valid.dtype == bool
        np.testing.assert_array_equal(out.valid, _expected_valid(box, box, k * SHIFT))
        assert row["valid_fraction"] == pytest.approx(out.valid.mean())
        # same box in both frames: the crop flow is the frame motion in crop pixels
        # Stored flows are rounded to FLOW_QUANTUM (error <= half of it) and 0 where not valid.
        np.testing.assert_allclose(
            out.flow[out.valid],
            [k * SHIFT * scale] * int(out.valid.sum()),
            atol=FLOW_QUANTUM / 2 + 1e-6,
        )
        assert not out.flow[~out.valid].any()
        assert row["flow_median"] == pytest.approx(
            abs(k) * np.hypot(*SHIFT) * scale, abs=FLOW_QUANTUM
        )
        assert row["fb_error_median"] == pytest.approx(0.0, abs=1e-4)


def test_pairs_come_in_anchor_then_offset_order(video, frames) -> None:
    outputs, _, _ = _run(_chunk(video), frames)
    keys = [_key(o) for o in outputs if isinstance(o, PairOutput)]
    order = {k: i for i, k in enumerate([-1, 1, -2, 2])}
    assert keys == sorted(keys, key=lambda key: (key[0], order[key[2]]))


def test_chained_matches_direct_for_a_translation(video, frames) -> None:
    chunk = _chunk(video)
    direct, _, _ = _run(chunk, frames, mode=DIRECT)
    chained, counters, estimator = _run(chunk, frames, mode=CHAINED)
    _check_accounting(chunk, chained, 2)
    _check_crops(chained, frames)
    direct_pairs = {_key(o): o for o in _split(direct)[1]}
    chained_pairs = {_key(o): o for o in _split(chained)[1]}
    assert direct_pairs.keys() == chained_pairs.keys()
    for key, d in direct_pairs.items():
        c = chained_pairs[key]
        assert c.row["mode"] == CHAINED
        np.testing.assert_array_equal(c.valid, d.valid)
        np.testing.assert_allclose(c.flow[c.valid], d.flow[d.valid], atol=1e-3)
        assert c.row["valid_fraction"] == d.row["valid_fraction"]
    # one-step flows only, each once: 2 (N - 1)
    assert counters["flows_computed"] == len(estimator.calls) == 2 * (NUM_FRAMES - 1)
    assert all(abs(b - a) == 1 for a, b in estimator.calls)
    assert len(set(estimator.calls)) == len(estimator.calls)


@pytest.mark.parametrize("mode", [DIRECT, CHAINED])
def test_chunks_and_stride(video, frames, mode: str) -> None:
    anchors = anchor_frames(NUM_FRAMES, 2)
    whole, _, _ = _run(_chunk(video, anchors=anchors), frames, mode=mode)
    parts: list = []
    for run in chunk_anchors(anchors, 3):
        chunk = _chunk(video, anchors=run)
        outputs, _, _ = _run(chunk, frames, mode=mode)
        _check_accounting(chunk, outputs, 2)
        parts += outputs
    whole_pairs = {_key(o): o for o in _split(whole)[1]}
    part_pairs = {_key(o): o for o in _split(parts)[1]}
    assert whole_pairs.keys() == part_pairs.keys()
    assert len(whole_pairs) == expected_pair_count(NUM_FRAMES, 2, 2)
    for key, out in whole_pairs.items():
        np.testing.assert_array_equal(part_pairs[key].flow, out.flow)


@pytest.mark.parametrize("mode", [DIRECT, CHAINED])
def test_a_helper_thread_gives_the_same_outputs_and_counters(video, frames, mode: str) -> None:
    chunk = _chunk(video)
    Path(chunk.frame_files[5]).unlink()  # rejects and broken chains too
    inline, inline_counts, _ = _run(chunk, frames, mode=mode)
    with ThreadPoolExecutor(max_workers=1) as helper:
        overlapped, overlapped_counts, _ = _run(chunk, frames, helper, mode=mode)
    assert overlapped_counts == inline_counts
    assert inline_counts["pairs_made"] > 0 and any(isinstance(o, PairReject) for o in inline)
    assert [type(o) for o in overlapped] == [type(o) for o in inline]
    assert pickle.dumps(overlapped) == pickle.dumps(inline)
    # ``finish`` is applied to each output, in order, on the helper (where the job packs them).
    threads: set[str] = set()

    def finish(out):
        threads.add(threading.current_thread().name)
        return ("finished", out)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="helper") as helper:
        finished, _, _ = _run(chunk, frames, helper, finish, mode=mode)
    assert pickle.dumps(finished) == pickle.dumps([("finished", o) for o in inline])
    assert threads and all(name.startswith("helper") for name in threads)


# --------------------------------------------------------------------------- failures


def test_missing_frame_file(video, frames) -> None:
    chunk = _chunk(video)
    Path(chunk.frame_files[4]).unlink()  # listed, then gone
    outputs, counters, estimator = _run(chunk, frames)
    _check_accounting(chunk, outputs, 2)
    _check_crops(outputs, frames)
    _, pairs, rejects = _split(outputs)
    rejected = {_key(r): r.row for r in rejects}
    assert set(rejected) == {(4, 0, k) for k in (-1, 1, -2, 2)} | {
        (a, 0, 4 - a) for a in (2, 3, 5, 6)
    }
    for key, row in rejected.items():
        assert row["reason"] == FRAME_MISSING
        assert row["stage"] == STAGE_DECODE
        assert row["video_id"] == "walk"
        assert row["annotation_id"] == -1
        assert ("anchor frame 4" if key[0] == 4 else "partner frame 4") in row["detail"]
    assert all(4 not in (o.row["frame_a"], o.row["frame_b"]) for o in pairs)
    assert all(4 not in call for call in estimator.calls)
    assert counters["frames_failed"] == 1
    assert counters["frames_decoded"] == NUM_FRAMES - 1
    assert counters[f"rejected.{FRAME_MISSING}"] == len(rejects) == 8
    assert counters["pairs_made"] == len(pairs)
    assert counters["anchors_done"] == NUM_FRAMES


def test_missing_frame_breaks_chains(video, frames) -> None:
    chunk = _chunk(video)
    Path(chunk.frame_files[4]).unlink()
    outputs, counters, _ = _run(chunk, frames, mode=CHAINED)
    _check_accounting(chunk, outputs, 2)
    rejected = {_key(r): r.row["reason"] for r in _split(outputs)[2]}
    assert rejected == {
        **{(4, 0, k): FRAME_MISSING for k in (-1, 1, -2, 2)},
        **{(a, 0, 4 - a): FRAME_MISSING for a in (2, 3, 5, 6)},
        (3, 0, 2): CHAIN_BROKEN,  # 3 -> 5 goes through 4
        (5, 0, -2): CHAIN_BROKEN,
    }
    assert counters[f"rejected.{CHAIN_BROKEN}"] == 2


def test_frame_of_another_size(video, frames) -> None:
    chunk = _chunk(video)
    small = np.zeros((HEIGHT // 2, WIDTH // 2, 3), np.uint8)
    assert cv2.imwrite(chunk.frame_files[5], small)
    outputs, counters, estimator = _run(chunk, frames)
    _check_accounting(chunk, outputs, 2)
    rejects = _split(outputs)[2]
    # anchor 5's own pairs are cut from its own (small) frame, against full-size partners
    assert {_key(r) for r in rejects} == {(5, 0, k) for k in (-1, 1, -2, 2)} | {
        (a, 0, 5 - a) for a in (3, 4, 6, 7)
    }
    assert {r.row["reason"] for r in rejects} == {FRAME_SIZE_MISMATCH}
    assert {r.row["stage"] for r in rejects} == {STAGE_PAIRS}
    assert all(5 not in call for call in estimator.calls)
    assert counters[f"rejected.{FRAME_SIZE_MISMATCH}"] == 8


def test_min_valid(video, frames) -> None:
    chunk = _chunk(video)
    everything, _, _ = _run(chunk, frames, min_valid=0.0, max_offset=3)
    fractions = {_key(o): o.row["valid_fraction"] for o in _split(everything)[1]}
    levels = sorted(set(fractions.values()))
    assert len(levels) >= 3  # the motion leaves more of the crop for larger offsets
    threshold = levels[len(levels) // 2]
    outputs, counters, _ = _run(chunk, frames, min_valid=threshold, max_offset=3)
    _check_accounting(chunk, outputs, 3)
    _check_crops(outputs, frames)
    _, pairs, rejects = _split(outputs)
    assert {_key(o) for o in pairs} == {k for k, f in fractions.items() if f >= threshold}
    assert {_key(r) for r in rejects} == {k for k, f in fractions.items() if f < threshold}
    assert all(r.row["reason"] == TOO_FEW_VALID for r in rejects)
    assert all(r.row["stage"] == STAGE_PAIRS for r in rejects)
    assert counters[f"rejected.{TOO_FEW_VALID}"] == len(rejects) > 0
    assert counters["pairs_made"] == len(pairs) > 0


def test_no_valid_pixel_is_rejected_even_without_min_valid(video, frames) -> None:
    chunk = _chunk(video)
    outputs, counters, _ = _run(chunk, frames, gain=100.0)  # everything flies out of the frame
    crops, pairs, rejects = _split(outputs)
    _check_accounting(chunk, outputs, 2)
    assert crops == [] and pairs == []
    assert {r.row["reason"] for r in rejects} == {TOO_FEW_VALID}
    assert counters[f"rejected.{TOO_FEW_VALID}"] == len(rejects)


# --------------------------------------------------------------------------- people


def test_people_boxes(video, frames) -> None:
    side = 24.0
    scale = side / (200 * 1.25)
    entries = [
        PersonEntry("walk", 3, 27.5, 19.5, scale, person=0),
        PersonEntry("walk", 3, 20.0, 15.0, scale, person=2),
    ]
    anchors = anchor_frames(NUM_FRAMES, 1)
    people = people_for_frames(entries, anchors, reach=2)
    assert sorted(people) == [1, 2, 3, 4, 5]
    chunk = _chunk(video, people=people, targets={(e.frame, e.person): e for e in entries})
    outputs, counters, _ = _run(chunk, frames)
    _check_accounting(chunk, outputs, 2)
    _check_crops(outputs, frames)
    crops, pairs, rejects = _split(outputs)
    assert rejects == []
    # crop A of anchor 3 is crop B of every (a, 3): stored once
    referenced = {(o.row["frame_a"], tuple(o.row["crop_box_a"])) for o in pairs}
    referenced |= {(o.row["frame_b"], tuple(o.row["crop_box_b"])) for o in pairs}
    assert len(crops) == len(referenced) < 2 * len(pairs)
    assert {o.row["frame_a"] for o in pairs} == {1, 2, 3, 4, 5}
    assert {o.row["person"] for o in pairs} == {0, 2}
    assert counters["anchors_done"] == 5
    boxes = {e.person: as_box(person_box(e)) for e in entries}
    for out in pairs:
        row = out.row
        a, b, k, person = row["frame_a"], row["frame_b"], row["offset"], row["person"]
        box_a = boxes[person]
        assert tuple(row["crop_box_a"]) == box_a  # the frame-3 box, exact or nearest
        assert row["box_source_a"] == (BOX_PEOPLE if a == 3 else BOX_PEOPLE_NEAREST)
        if b == 3:
            # crop B is the person's own row at frame 3: the scene moved under a fixed box
            assert row["box_source_b"] == BOX_PEOPLE
            assert tuple(row["crop_box_b"]) == box_a
            expected_flow = k * SHIFT * CROP / side
        else:
            # crop B follows the motion, so the crop flow is ~0
            assert row["box_source_b"] == BOX_FOLLOWED
            moved = as_box((box_a[0] + k * SHIFT[0], box_a[1] + k * SHIFT[1], side, side))
            assert tuple(row["crop_box_b"]) == pytest.approx(moved, abs=1e-4)
            expected_flow = np.zeros(2)
        assert out.valid.any()
        expected_valid = _expected_valid(box_a, tuple(row["crop_box_b"]), k * SHIFT)
        np.testing.assert_array_equal(out.valid, expected_valid)
        np.testing.assert_allclose(
            out.flow[out.valid],
            [expected_flow] * int(out.valid.sum()),
            atol=FLOW_QUANTUM / 2 + 1e-3,
        )


def test_people_anchor_without_anyone_gets_no_pairs(video, frames) -> None:
    entry = PersonEntry("walk", 6, 27.5, 19.5, 0.1)
    people = people_for_frames([entry], anchor_frames(NUM_FRAMES, 1), reach=0)
    chunk = _chunk(video, people=people, targets={(6, 0): entry})
    assert chunk.planned_anchors() == [6]
    outputs, counters, estimator = _run(chunk, frames)
    _check_accounting(chunk, outputs, 2)
    assert {o.row["frame_a"] for o in _split(outputs)[1]} == {6}
    # only the frames and flows of anchor 6 are touched
    assert counters["frames_decoded"] == 4  # 4, 5, 6, 7
    assert set(estimator.calls) == flows_needed([6], NUM_FRAMES, 2, DIRECT)


def test_follow_box() -> None:
    box = (10.0, 20.0, 30.0, 30.0)
    displacement = np.array([[1.0, 2.0], [3.0, 4.0], [100.0, 100.0], [2.0, 3.0]])
    valid = np.array([True, True, False, True])
    assert follow_box(box, displacement, valid) == (12.0, 23.0, 30.0, 30.0)
    assert follow_box(box, displacement, np.zeros(4, bool)) == box
