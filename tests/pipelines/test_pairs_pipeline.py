"""``dptrack-build pairs`` end to end: real video, counts, modes, alignment, rejects, memory.

Real data: ``../shared/data/video/street_people_720p.avi`` (205 frames, 1280x720) and the 10
consecutive 720p PoseTrack frames of ``posetrack18/videos/000001_mpiinew_test``; tests skip when
the folder is absent. Known motion: a ``dptrack-build synth`` video with exact flow truth.
"""

from __future__ import annotations

import collections
import json
import shutil
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from dptrack_pipeline.cli import main
from dptrack_pipeline.crops import crop_pixel_centres
from dptrack_pipeline.flow.registry import create_estimator
from dptrack_pipeline.frames import iter_video_frames
from dptrack_pipeline.pairs.plan import expected_pair_count, pair_offsets
from dptrack_pipeline.pairs.videos import count_frames, discover_videos
from dptrack_pipeline.pairs.worker import PairOutput, PairsChunk, PairSettings, process_chunk
from dptrack_pipeline.shards import DenseReader, read_dataset_info, read_pairs, read_rejects
from dptrack_pipeline.shards.verify import verify_output
from dptrack_pipeline.synth.truth import load_flow_truth

POSETRACK_SEQ = "posetrack18/videos/000001_mpiinew_test"
STREET = "video/street_people_720p.avi"


def build(*args: str) -> str:
    result = CliRunner().invoke(
        main, ["pairs", *args, "--no-progress", "--runner", "FnApiRunner"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output


def brute_force_pairs(num_frames: int, max_offset: int, stride: int) -> int:
    return sum(
        1
        for t in range(0, num_frames, stride)
        for k in range(-max_offset, max_offset + 1)
        if k and 0 <= t + k < num_frames
    )


def warp_partner(crop_b: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Crop B sampled at ``p + flow(p)`` for every crop-A pixel ``p`` (bilinear)."""
    size = flow.shape[0]
    grid = np.mgrid[0:size, 0:size][::-1].transpose(1, 2, 0).astype(np.float32)
    maps = grid + flow
    return cv2.remap(crop_b, maps[..., 0], maps[..., 1], cv2.INTER_LINEAR)


@pytest.fixture(scope="module")
def posetrack_pairs(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pairs") / "direct"
    build("--videos", str(shared_data / POSETRACK_SEQ), "--out", str(out), "--crop-size", "64")
    return out


def test_pair_count_matches_frames_offsets_and_stride_on_the_street_video(
    shared_data: Path, tmp_path: Path
) -> None:
    """205 frames, K = 2, S = 25: pairs = the closed form = brute-force enumeration; every
    flow needed is computed once (one chunk) and counters add up."""
    out = tmp_path / "street"
    build(
        "--videos", str(shared_data / STREET), "--out", str(out), "--crop-size", "32",
        "--offsets", "2", "--stride", "25", "--estimator-option", "preset=ultrafast",
    )  # fmt: skip
    info = read_dataset_info(str(out))
    c = info["counters"]
    assert c["frames_in_videos"] == 205
    expected = brute_force_pairs(205, 2, 25)
    assert expected == expected_pair_count(205, 2, 25) == 9 * 4 - 2  # anchor 0 lacks -1, -2
    assert c["pairs_planned"] == c["pairs_written"] + c["pairs_rejected"] == expected
    assert c["pairs_written"] == read_pairs(str(out)).num_rows
    assert c["flows_computed"] == c["flows_needed"] == 2 * expected  # no anchor shares a flow
    assert c["frames_decoded"] == 9 * 5 - 2
    assert info["kind"] == "pairs" and info["stride"] == 25 and info["offsets"] == [-2, -1, 1, 2]
    assert verify_output(str(out)) == []


def test_posetrack_sequence_pairs_crops_and_flows_line_up(posetrack_pairs: Path) -> None:
    """Crop B sampled at p + flow(p) reproduces crop A where the flow is valid."""
    table = read_pairs(str(posetrack_pairs)).to_pylist()
    assert len(table) == expected_pair_count(10, 3, 1) == 48
    assert sorted((r["frame_a"], r["offset"]) for r in table) == sorted(
        (t, k) for t in range(10) for k in pair_offsets(t, 10, 3)
    )
    info = read_dataset_info(str(posetrack_pairs))
    assert info["counters"]["crops_written"] == 10  # default boxes: one crop per frame
    errors_warped, errors_plain = [], []
    with DenseReader(str(posetrack_pairs)) as dense:
        for row in table:
            crop_a = dense.crop(row["dense_file"], row["crop_a_index"]).astype(np.float32)
            crop_b = dense.crop(row["dense_file"], row["crop_b_index"]).astype(np.float32)
            flow, valid = dense.flow(row["dense_file"], row["flow_index"])
            assert valid.mean() == pytest.approx(row["valid_fraction"], abs=1e-6)
            warped = warp_partner(crop_b, flow)
            errors_warped.append(np.abs(warped - crop_a)[valid].mean())
            errors_plain.append(np.abs(crop_b - crop_a)[valid].mean())
    # Measured: warped 3.0 grey levels on average against 19.7 unwarped (64-px crops, DIS).
    assert np.mean(errors_warped) < 0.3 * np.mean(errors_plain)
    assert np.mean(errors_warped) < 5.0
    assert verify_output(str(posetrack_pairs)) == []


def test_two_runs_write_identical_bytes(posetrack_pairs: Path, shared_data: Path, tmp_path: Path):
    out = tmp_path / "again"
    build("--videos", str(shared_data / POSETRACK_SEQ), "--out", str(out), "--crop-size", "64")
    first = json.loads((posetrack_pairs / "dataset_info.json").read_text())
    second = json.loads((out / "dataset_info.json").read_text())
    assert first["files"] == second["files"]
    assert (posetrack_pairs / "dataset_info.json").read_bytes() == (
        out / "dataset_info.json"
    ).read_bytes()


def _synth_video(root: Path, seed: int) -> tuple[Path, str]:
    result = CliRunner().invoke(
        main,
        ["synth", str(root), "--videos", "1", "--frames", "12", "--label-every", "1",
         "--width", "192", "--height", "144", "--seed", str(seed)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    index = json.loads((root / "truth" / "index.json").read_text())
    video = index["videos"][0]
    return root / "frames" / video["folder"], video["video_id"]


def _truth_in_crop(root: Path, video_id: str, row: dict, size: int) -> tuple[np.ndarray, ...]:
    """The exact crop flow of a pair and where the truth says the point is visible."""
    a, b = row["frame_a"], row["frame_b"]
    flow, visible = load_flow_truth(root, video_id, a, b)
    centres = crop_pixel_centres(row["crop_box_a"], size)
    height, width = visible.shape
    nearest = np.clip(np.rint(centres).astype(int), 0, [width - 1, height - 1])
    moved = centres + flow[nearest[..., 1], nearest[..., 0]]
    bx, by, bw, bh = row["crop_box_b"]
    c = np.arange(size)
    truth = np.stack(
        [
            (moved[..., 0] - bx) * size / bw - 0.5 - c[None, :],
            (moved[..., 1] - by) * size / bh - 0.5 - c[:, None],
        ],
        axis=-1,
    )
    return truth, visible[nearest[..., 1], nearest[..., 0]]


def test_chained_and_direct_agree_on_known_motion(tmp_path: Path) -> None:
    """On a synth video with exact flow, chained composition stays within a measured bound of
    the direct flow, and both stay close to the truth.

    Measured during development (DIS, 64-px crops of a 144-px box, seeds 0 and 1): direct vs
    chained mean end-point difference 0 / 0.05-0.06 / 0.12-0.14 crop px at |k| = 1 / 2 / 3 (max
    over pairs 0.22); both modes 0.04-0.12 crop px from the truth. Bounds below are about 2x.
    """
    root = tmp_path / "synth"
    frames, video_id = _synth_video(root, seed=0)
    spec = discover_videos([str(frames)])[0]
    found = count_frames(spec)
    estimator = create_estimator("dis")
    estimator.setup()
    size = 64
    results = {}
    for mode in ("direct", "chained"):
        chunk = PairsChunk(
            spec, found.num_frames, tuple(range(found.num_frames)), frame_files=found.frame_files
        )
        counters: collections.Counter = collections.Counter()
        outs = process_chunk(chunk, estimator, PairSettings(mode=mode, crop_size=size), counters)
        results[mode] = {
            (o.row["frame_a"], o.row["offset"]): o for o in outs if isinstance(o, PairOutput)
        }
        assert counters["pairs_made"] == expected_pair_count(12, 3, 1)
        flows = counters["flows_computed"]
        assert flows == (expected_pair_count(12, 3, 1) if mode == "direct" else 2 * 11)
    for k in (1, 2, 3):
        diff, epe = [], {"direct": [], "chained": []}
        for key, direct in results["direct"].items():
            if abs(key[1]) != k:
                continue
            chained = results["chained"][key]
            both = direct.valid & chained.valid
            diff.append(np.linalg.norm(direct.flow - chained.flow, axis=-1)[both].mean())
            truth, visible = _truth_in_crop(root, video_id, direct.row, size)
            for mode, out in (("direct", direct), ("chained", chained)):
                good = out.valid & visible
                epe[mode].append(np.linalg.norm(out.flow - truth, axis=-1)[good].mean())
        if k == 1:
            assert max(diff) < 1e-5  # one step: the same flow
        else:
            assert np.mean(diff) < 0.3 and max(diff) < 0.5
        for mode in epe:
            assert np.mean(epe[mode]) < 0.25, (k, mode, np.mean(epe[mode]))


def test_bad_frames_and_people_rows_are_set_aside(shared_data: Path, tmp_path: Path) -> None:
    """A corrupt frame rejects the pairs that need it (reason frame_unreadable); bad people rows
    go to the rejects with their reason; in = written + rejected for pairs and people."""
    seq = tmp_path / "seq"
    shutil.copytree(shared_data / POSETRACK_SEQ, seq, ignore=shutil.ignore_patterns("*.mp4"))
    (seq / "000004.jpg").write_bytes(b"not a jpeg")
    people = tmp_path / "people.csv"
    people.write_text(
        "video,frame,x,y,scale,person\n"
        "seq,0,640,400,1.6,0\n"  # good: covers frames within --people-reach
        "seq,2,700,400,1.6,1\n"  # good, a second person
        "seq,50,640,400,1.6,0\n"  # frame out of range
        "seq,3,5000,400,1.6,0\n"  # centre outside the frame
        "nope,0,640,400,1.6,0\n"  # unknown video
        "seq,1,640,400,-1,0\n"  # bad scale
    )
    out = tmp_path / "out"
    build(
        "--videos", str(seq), "--people", str(people), "--out", str(out), "--crop-size", "32",
        "--offsets", "2", "--people-reach", "3",
    )  # fmt: skip
    c = read_dataset_info(str(out))["counters"]
    assert (c["people_in"], c["people_used"], c["people_rejected"]) == (6, 2, 4)
    rejects = read_rejects(str(out)).to_pylist()
    reasons = collections.Counter(r["reason"] for r in rejects)
    assert reasons["people_frame_out_of_range"] == 1
    assert reasons["people_outside_frame"] == 1
    assert reasons["people_unknown_video"] == 1
    assert reasons["people_bad_value"] == 1
    assert reasons["frame_unreadable"] == c["pairs_rejected"] > 0
    assert c["pairs_planned"] == c["pairs_written"] + c["pairs_rejected"]
    table = read_pairs(str(out)).to_pylist()
    assert not any(4 in (r["frame_a"], r["frame_b"]) for r in table)
    # Anchors 0..6 lie within reach 3 of a row (frames 0, 2): two people there, one beyond.
    assert {r["person"] for r in table} == {0, 1}
    assert {r["box_source_a"] for r in table} == {"people", "people_nearest"}
    assert {r["box_source_b"] for r in table} <= {"people", "followed"}
    assert verify_output(str(out)) == []


def _write_video(path: Path, frames: list[np.ndarray]) -> None:
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (frames[0].shape[1], frames[0].shape[0])
    )
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame[:, :, ::-1])
    writer.release()


def _peak_bytes(video: Path) -> tuple[int, int]:
    spec = discover_videos([str(video)])[0]
    n = count_frames(spec).num_frames
    estimator = create_estimator("dis")
    estimator.setup()
    chunk = PairsChunk(spec, n, tuple(range(n)))  # the whole video as one element
    counters: collections.Counter = collections.Counter()
    tracemalloc.start()
    try:
        for _ in process_chunk(chunk, estimator, PairSettings(crop_size=32), counters):
            pass  # outputs leave at once, as they do from a Beam DoFn
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, counters["pairs_made"]


def test_memory_stays_flat_when_the_video_is_four_times_longer(
    shared_data: Path, tmp_path: Path
) -> None:
    """Peak Python/NumPy memory of one element streaming a video: 24 vs 96 frames."""
    frames = [
        cv2.resize(f, (320, 180))
        for _, f in iter_video_frames(str(shared_data / STREET), start=0, stop=96)
    ]
    short, long = tmp_path / "short.avi", tmp_path / "long.avi"
    _write_video(short, frames[:24])
    _write_video(long, frames)
    peak_short, pairs_short = _peak_bytes(short)
    peak_long, pairs_long = _peak_bytes(long)
    assert pairs_long > 4 * pairs_short - 20
    # Measured: peak 10.7 MB for 24 frames, 9.8 MB for 96 (~2K+1 frames and ~4K flows held).
    assert peak_long < 1.2 * peak_short, (peak_short, peak_long)


def test_cli_refuses_a_bad_people_file_and_passes_beam_options(tmp_path: Path) -> None:
    frames = tmp_path / "clip"
    frames.mkdir()
    rng = np.random.default_rng(0)
    image = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    for t in range(4):
        cv2.imwrite(str(frames / f"{t}.png"), np.roll(image, t, axis=1))
    bad = tmp_path / "people.csv"
    bad.write_text("video,frame,x\nclip,0,3\n")
    result = CliRunner().invoke(
        main, ["pairs", "--videos", str(frames), "--people", str(bad), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code != 0 and "lacks" in result.output
    assert not (tmp_path / "o").exists()
    out = tmp_path / "o2"
    output = build(
        "--videos", str(frames), "--out", str(out), "--crop-size", "16", "--offsets", "1",
        "--direct_num_workers", "1",
    )  # fmt: skip
    assert "--direct_num_workers 1" in output
    assert read_dataset_info(str(out))["counters"]["pairs_written"] == 6
    result = CliRunner().invoke(main, ["pairs", "--videos", str(frames), "--out", str(out)])
    assert result.exit_code != 0 and "--overwrite" in result.output


def test_inspect_summarises_verifies_and_renders_a_pairs_folder(
    posetrack_pairs: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        main,
        ["inspect", str(posetrack_pairs), "--render", str(tmp_path / "r"), "--max-render", "3"],
    )
    assert result.exit_code == 0, result.output
    assert "48 planned, 48 written, 0 rejected" in result.output
    assert "files verified" in result.output
    pictures = sorted((tmp_path / "r").glob("*.png"))
    assert len(pictures) == 3
    assert cv2.imread(str(pictures[0])).shape == (64, 4 * 64, 3)
    summary = json.loads(
        CliRunner().invoke(main, ["inspect", str(posetrack_pairs), "--json"]).output
    )
    assert [r["offset"] for r in summary["offsets"]] == [-3, -2, -1, 1, 2, 3]
    assert summary["problems"] == []
    # A damaged file is reported and the exit status says so.
    victim = next(posetrack_pairs.glob("pairs-*.parquet"))
    copy = tmp_path / "copy"
    shutil.copytree(posetrack_pairs, copy)
    (copy / victim.name).write_bytes(victim.read_bytes()[:-10])
    result = CliRunner().invoke(main, ["inspect", str(copy)])
    assert result.exit_code == 1


def test_multi_processing_workers_write_the_same_bytes(tmp_path: Path) -> None:
    """Beam options pass through: two worker processes write what the in-process runner does."""
    frames, _ = _synth_video(tmp_path / "synth", seed=3)
    outs = []
    for name, extra in (
        ("in_process", ["--runner", "FnApiRunner"]),
        (
            "two_processes",
            ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"],
        ),
    ):
        out = tmp_path / name
        result = CliRunner().invoke(
            main,
            ["pairs", "--videos", str(frames), "--out", str(out), "--crop-size", "16",
             "--offsets", "2", "--num-shards", "2", "--no-progress", *extra],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        outs.append(out)
    assert "multi_processing" in result.output
    first, second = ((o / "dataset_info.json").read_bytes() for o in outs)
    assert first == second
    assert read_dataset_info(str(outs[1]))["counters"]["pairs_written"] == expected_pair_count(
        12, 2, 1
    )
