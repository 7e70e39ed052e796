"""Every malformed input is a clear error or a counted reject, never a traceback or a crash at
the manifest: a corpus of broken annotation files, frames and flags, each run end to end."""

from __future__ import annotations

import copy
import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import pyarrow.parquet as pq
import pytest

from dptrack_pipeline.cli.job import NOTHING_WRITTEN
from tests.reliability.conftest import invoke, labelled_image, run_job, write_json

Doc = dict[str, Any]


def _dense(doc: Doc) -> dict[str, Any]:
    return next(a for a in doc["annotations"] if "dp_x" in a)


def _set(path: tuple, value: Any) -> Callable[[Doc], None]:
    """A mutation setting a field of the first DensePose annotation."""

    def mutate(doc: Doc) -> None:
        target = _dense(doc)
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _duplicate_image(doc: Doc) -> None:
    doc["images"].append(copy.deepcopy(labelled_image(doc)))


def _duplicate_annotation(doc: Doc) -> None:
    doc["annotations"].append(copy.deepcopy(_dense(doc)))


def _image_in_two_videos(doc: Doc) -> None:
    twin = copy.deepcopy(labelled_image(doc))
    twin["id"], twin["vid_id"] = 99, 4242
    doc["images"].append(twin)


def _points(n: int) -> Callable[[Doc], None]:
    def mutate(doc: Doc) -> None:
        ann = _dense(doc)
        for name in ("dp_x", "dp_y", "dp_U", "dp_V"):
            ann[name] = [0.5 + 100 * i / n for i in range(n)] if name in "dp_x dp_y" else [0.5] * n
        ann["dp_I"] = [1] * n

    return mutate


def _wrong_size(doc: Doc) -> None:
    for image in doc["images"]:
        image["width"] += 7


def _no_annotations(doc: Doc) -> None:
    doc["annotations"] = []


def _bad_video_ids(doc: Doc) -> None:
    for image in doc["images"]:
        image["vid_id"] = {"not": "an id"}


CORPUS: dict[str, tuple[Callable[[Doc], None], set[str]]] = {
    # name: (mutation, reasons the run must report)
    "duplicate image id": (_duplicate_image, {"duplicate_image_id"}),
    "duplicate annotation id": (_duplicate_annotation, {"duplicate_annotation_id"}),
    "image under two videos": (_image_in_two_videos, {"image_in_two_videos"}),
    "NaN box": (_set(("bbox", 0), math.nan), {"bbox_invalid"}),
    "negative box": (_set(("bbox",), [-5, -5, -10, 20]), {"bbox_invalid"}),
    "huge box": (_set(("bbox",), [0, 0, 1e9, 1e9]), {"bbox_outside_image"}),
    "1e308 box": (_set(("bbox", 0), 1e308), {"bbox_outside_image"}),
    "3-number box": (_set(("bbox",), [1, 2, 3]), {"bbox_invalid"}),
    "NaN U": (_set(("dp_U", 0), math.nan), {"non_finite"}),
    "V out of range": (_set(("dp_V", 0), 7.0), {"dp_UV_out_of_range"}),
    "part 25": (_set(("dp_I", 0), 25), {"dp_I_out_of_range"}),
    "short point list": (_set(("dp_x",), [1.0]), {"dp_length_mismatch"}),
    "garbage RLE": (_set(("dp_masks",), [{"size": [256, 256], "counts": "!!"}] * 14), {"bad_rle"}),
    "2 keypoints": (_set(("keypoints",), [1, 2]), {"keypoints_malformed"}),
    "string image_id": (_set(("image_id",), "abc"), {"unknown_image"}),
    "no track_id": (_set(("track_id",), None), {"missing_field"}),
    "100k points": (_points(100_000), set()),
    "JSON size differs from the frame": (_wrong_size, {"frame_size_mismatch"}),
    "empty annotation list": (_no_annotations, set()),
    "every vid_id malformed": (_bad_video_ids, set()),
}


@pytest.mark.parametrize("name", list(CORPUS))
def test_malformed_annotations_are_rejected_with_their_reason(
    name: str, synth: Path, annotations: Doc, tmp_path: Path
) -> None:
    mutate, reasons = CORPUS[name]
    mutate(annotations)
    path = write_json(tmp_path / "a.json", annotations)
    out = run_job(
        "run", tmp_path / "out", "--annotations", path, "--frames-root", synth, "--offsets", "1"
    )
    assert out.info is not None, out.output  # finished: a manifest, counters reconciled
    assert reasons <= out.reasons, (out.reasons, out.output)
    assert out.info["counters"]["annotations_in"] == len(annotations["annotations"])
    if name == "100k points":
        assert out.info["counters"]["points_in"] > 100_000


@pytest.mark.parametrize(
    "content, says",
    [
        (b'{"images": [{"id": 1', "cannot read"),
        (b"[]", "got a JSON list"),
        (b"\xff\xfe{}", "utf-8"),
        (b'{"images": {}, "annotations": []}', "'images' is a dict"),
        (b'{"images": [], "annotations": "x"}', "'annotations' is a str"),
        (b"", "cannot read"),
    ],
    ids=["truncated", "top-level list", "not UTF-8", "images a dict", "annotations a str", "empty"],
)
def test_unreadable_annotation_file_is_one_line_naming_it(
    content: bytes, says: str, synth: Path, tmp_path: Path
) -> None:
    path = tmp_path / "broken.json"
    path.write_bytes(content)
    for command in (["run", "--annotations", path, "--frames-root", synth], ["validate", path]):
        out_dir = tmp_path / "out"
        code, output = invoke(
            [*command, "--out", out_dir, "--no-progress"] if command[0] == "run" else command
        )
        assert code == 1 and "Traceback" not in output, output
        last = output.strip().splitlines()[-1]
        assert last.startswith("Error: ") and str(path) in last and says in last, output
        assert not out_dir.exists()


def test_all_frames_unreadable_finishes_with_exit_code_3(
    synth: Path, annotations: Doc, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    shutil.copytree(synth / "frames", root / "frames")
    for png in (root / "frames").rglob("*.png"):
        png.write_bytes(b"not a png")
    path = write_json(tmp_path / "a.json", annotations)
    out = run_job("run", tmp_path / "out", "--annotations", path, "--frames-root", root)
    assert out.exit_code == NOTHING_WRITTEN
    assert out.reasons == {"frame_unreadable", "source_frame_unreadable"}
    assert "no instances row was written" in out.output


def test_truncated_video_file_rejects_the_frames_it_lacks(
    synth: Path, annotations: Doc, tmp_path: Path
) -> None:
    """The frame folder replaced by a video file cut in half: the frames past the cut are
    rejected (unreadable or out of range), the ones before are propagated."""
    frames = sorted((synth / "frames").rglob("*.png"))
    folder = frames[0].parent.relative_to(synth)
    root = tmp_path / "root"
    (root / folder).parent.mkdir(parents=True)
    video = root / f"{folder}.avi"
    first = cv2.imread(str(frames[0]))
    size = (first.shape[1], first.shape[0])
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    for f in frames:
        writer.write(cv2.imread(str(f)))
    writer.release()
    data = video.read_bytes()
    video.write_bytes(data[: int(len(data) * 0.6)])
    path = write_json(tmp_path / "a.json", annotations)
    out = run_job("run", tmp_path / "out", "--annotations", path, "--frames-root", root)
    assert out.info is not None
    assert out.reasons & {"frame_unreadable", "frame_index_out_of_range"}, out.reasons
    assert out.info["totals"]["instances"] > 0


def test_validate_names_conflicts_and_frames_on_disk(
    synth: Path, annotations: Doc, tmp_path: Path
) -> None:
    _duplicate_image(annotations)
    _duplicate_annotation(annotations)
    _image_in_two_videos(annotations)
    annotations["images"][0]["width"] += 1
    annotations["images"][1]["file_name"] = "../elsewhere.png"
    path = write_json(tmp_path / "a.json", annotations)
    code, output = invoke(["validate", path, "--frames-root", synth])
    assert code == 1
    for reason in (
        "duplicate_image_id",
        "duplicate_annotation_id",
        "image_in_two_videos",
        "frame_size_mismatch",
        "path_outside_root",
    ):
        assert f": {reason}: " in output, (reason, output)
    clean = invoke(["validate", synth / "annotations.json", "--frames-root", synth])
    assert clean[0] == 0 and "no problems found" in clean[1]


def test_validate_checks_real_posetrack_frames(shared_data: Path, tmp_path: Path) -> None:
    """Real PoseTrack18 val JSON and its real 720p frames: clean as given; a width that disagrees
    with the real frame is named."""
    base = shared_data / "posetrack18"
    source = base / "annotations" / "test_posetrack18_val.json"
    assert invoke(["validate", source, "--frames-root", base])[0] == 0
    doc = json.loads(source.read_text())
    doc["images"][0]["width"] = 1000
    path = write_json(tmp_path / "a.json", doc)
    code, output = invoke(["validate", path, "--frames-root", base])
    assert code == 1 and "frame_size_mismatch" in output and "its image entry says 1000x" in output


@pytest.mark.parametrize(
    "flags, says",
    [
        (["--offsets", "0"], "--offsets"),
        (["--offsets", "-2"], "--offsets"),
        (["--fb-threshold", "0"], "--fb-threshold"),
        (["--fb-threshold", "-1"], "--fb-threshold"),
        (["--fb-threshold", "nan"], "--fb-threshold"),
        (["--fb-threshold", "inf"], "--fb-threshold"),
        (["--chain-check", "inf"], "chain"),
        (["--chain-check", "x"], "chain"),
        (["--photometric-check", "zncc:nan"], "ZNCC"),
        (["--num-shards", "0"], "--num-shards"),
        (["--crop-size", "0"], "--crop-size"),
        (["--frames-root", "/no/such/folder"], "--frames-root"),
    ],
)
def test_bad_flags_are_refused_before_any_work(
    flags: list[str], says: str, synth: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = ["run", "--annotations", synth / "annotations.json", "--out", out, "--no-progress"]
    if "--frames-root" not in flags:
        args += ["--frames-root", synth]
    code, output = invoke([*args, *flags])
    assert code in (1, 2) and "Traceback" not in output and says in output, output
    assert not out.exists()


def test_out_that_is_a_file_is_refused(synth: Path, tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out in (afile, afile / "sub"):
        code, output = invoke(
            ["run", "--annotations", synth / "annotations.json", "--frames-root", synth,
             "--out", out]
        )  # fmt: skip
        assert code == 2 and "is a file, not a folder" in output, output
    code, output = invoke(["pairs", "--videos", synth / "frames", "--out", afile])
    assert code == 2 and "is a file, not a folder" in output


def test_pairs_on_frames_that_all_fail_finishes(synth: Path, tmp_path: Path) -> None:
    folder = tmp_path / "clip"
    folder.mkdir()
    for i in range(4):
        (folder / f"{i:06d}.png").write_bytes(b"broken")
    out = run_job("pairs", tmp_path / "out", "--videos", folder)
    assert out.exit_code == NOTHING_WRITTEN and out.reasons == {"frame_unreadable"}
    rows = [r for f in (tmp_path / "out").glob("rejects-*") for r in pq.read_table(f).to_pylist()]
    assert rows and all(r["video_id"] == "clip" for r in rows)
