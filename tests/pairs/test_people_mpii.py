"""MPII Human Pose people for ``pairs``: the official ``.mat``, its JSON conversion, keyframes.

The ``.mat`` files are written here with :func:`scipy.io.savemat` in the structure of MPII's
``mpii_human_pose_v1_u12_1.mat`` (``RELEASE`` with ``annolist`` struct array, ``img_train``,
``single_person`` cell, ``act``, ``video_list`` cell; per person ``scale``, ``objpos`` and
``annopoints.point`` with ``id``/``x``/``y``/``is_visible``; 1-based coordinates; empty arrays for
missing values; a test image whose rects lack the ``annopoints`` field altogether) and of
``mpii_human_pose_v1_sequences_keyframes.mat`` (``annolist_keyframes(imgidx).image.name`` =
``<sequence>/<frame>.jpg``). The end-to-end run places real consecutive frames (the shared
PoseTrack sequence) in an MPII-style sequence folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import scipy.io
from click.testing import CliRunner

from dptrack_pipeline.cli import main
from dptrack_pipeline.pairs.config import PairsConfig
from dptrack_pipeline.pairs.launch import prepare
from dptrack_pipeline.pairs.people import person_box
from dptrack_pipeline.pairs.people_formats import detect_format, read_people
from dptrack_pipeline.pairs.people_mpii import load_keyframes, load_mpii_json, load_mpii_mat
from dptrack_pipeline.rejects import (
    PEOPLE_BAD_VALUE,
    PEOPLE_INCONSISTENT,
    PEOPLE_NO_BOX,
    PEOPLE_UNKNOWN_IMAGE,
)

EMPTY = np.zeros((0, 0))

# Joints of the left (white) player on frame 4 of the shared sequence, 1-based like MPII.
PLAYER_JOINTS = [
    (0, 365.0, 512.0), (1, 400.0, 450.0), (2, 430.0, 400.0), (3, 470.0, 400.0),
    (4, 490.0, 470.0), (5, 540.0, 540.0), (6, 450.0, 400.0), (7, 455.0, 340.0),
    (8, 455.0, 320.0), (9, 460.0, 280.0),
]  # fmt: skip


def _points(joints: list[tuple[int, float, float]]) -> np.ndarray:
    dt = [("id", "O"), ("x", "O"), ("y", "O"), ("is_visible", "O")]
    points = np.zeros((1, len(joints)), dtype=dt)
    for k, (j, x, y) in enumerate(joints):
        points[0, k] = (np.array([[j]]), np.array([[x]]), np.array([[y]]), np.array([[1]]))
    return points


def _rects(people: list[dict], fields: tuple[str, ...]) -> np.ndarray:
    rects = np.zeros((1, len(people)), dtype=[(f, "O") for f in fields])
    for k, person in enumerate(people):
        for f in fields:
            rects[0, k][f] = person.get(f, EMPTY)
    return rects


def _person(joints=None, objpos=None, scale=None) -> dict:
    out: dict = {}
    if scale is not None:
        out["scale"] = np.array([[scale]])
    if objpos is not None:
        out["objpos"] = {"x": np.array([[objpos[0]]]), "y": np.array([[objpos[1]]])}
    if joints is not None:
        out["annopoints"] = {"point": _points(joints)}
    out.update({"x1": np.array([[1.0]]), "y1": np.array([[1.0]]), "x2": np.array([[9.0]])})
    out["y2"] = np.array([[9.0]])
    return out


TRAIN_FIELDS = ("x1", "y1", "x2", "y2", "annopoints", "scale", "objpos")
TEST_FIELDS = ("scale", "objpos")  # MPII test images: rough position and scale only

IMAGES = [
    # (name, rect fields, people)
    ("015601864.jpg", TRAIN_FIELDS, [
        _person(PLAYER_JOINTS, objpos=(450, 420), scale=1.4),
        _person([(9, 700.0, 300.0)], objpos=(701.0, 401.0), scale=1.2),  # 1 joint: objpos/scale
    ]),
    ("015599452.jpg", TEST_FIELDS, [_person(objpos=(301.0, 201.0), scale=2.0)]),
    ("005808361.jpg", TRAIN_FIELDS, [_person()]),  # nothing to box
    ("086617615.jpg", TRAIN_FIELDS, [_person(objpos=(100, 100), scale=1.0)]),  # no keyframe
    ("060111501.jpg", TRAIN_FIELDS, [_person([(20, 5.0, 5.0), (1, 9.0, 9.0)])]),  # bad joint id
    ("070807258.jpg", TRAIN_FIELDS, [_person(objpos=(50, 50), scale=1.0)]),  # keyframe elsewhere
    ("016176117.jpg", TRAIN_FIELDS, [_person(objpos=(50, 50), scale=0.0)]),  # scale 0
]  # fmt: skip

KEYFRAMES = [
    "015601864/00000005.jpg",
    "015599452/00000021.jpg",
    "005808361/00000021.jpg",
    "",  # 086617615 has no sequence
    "060111501/00000021.jpg",
    "016176117/00000021.jpg",  # imgidx 6 names image 7's sequence...
    "070807258/00000021.jpg",  # ...and imgidx 7 image 6's: the files do not belong together
]


def write_release(path: Path, images=IMAGES) -> Path:
    """``RELEASE`` in the official structure (see the module docstring)."""
    n = len(images)
    annolist = np.zeros(
        (1, n), dtype=[("image", "O"), ("annorect", "O"), ("frame_sec", "O"), ("vididx", "O")]
    )
    for k, (name, fields, people) in enumerate(images):
        annolist[0, k]["image"] = {"name": name}
        annolist[0, k]["annorect"] = _rects(people, fields) if people else EMPTY
        annolist[0, k]["frame_sec"] = np.array([[12.0 + k]])
        annolist[0, k]["vididx"] = np.array([[k % 2 + 1]])
    single = np.empty((n, 1), dtype=object)
    for k in range(n):
        single[k, 0] = np.array([[1]])
    act = np.zeros((n, 1), dtype=[("cat_name", "O"), ("act_name", "O"), ("act_id", "O")])
    for k in range(n):
        act[k, 0] = ("sports", "soccer", np.array([[k]]))
    videos = np.empty((1, 2), dtype=object)
    videos[0, 0], videos[0, 1] = "aAOusnrSsHI", "nAHrkXRRwJc"
    release = {
        "annolist": annolist,
        "img_train": np.array([[1, 0, 1, 1, 1, 1, 1]], dtype=float)[:, :n],
        "version": "12",
        "single_person": single,
        "act": act,
        "video_list": videos,
    }
    scipy.io.savemat(str(path), {"RELEASE": release})
    return path


def write_keyframes(path: Path, names=KEYFRAMES) -> Path:
    keyframes = np.zeros((1, len(names)), dtype=[("image", "O")])
    for k, name in enumerate(names):
        keyframes[0, k]["image"] = {"name": name} if name else {"name": EMPTY}
    scipy.io.savemat(str(path), {"annolist_keyframes": keyframes})
    return path


def write_json(path: Path) -> Path:
    """The common JSON conversion of the first image's people (HRNet / mmpose layout)."""
    joints = [[-1.0, -1.0]] * 16
    vis = [0] * 16
    for j, x, y in PLAYER_JOINTS:
        joints[j], vis[j] = [x, y], 1
    rows = [
        {"image": "015601864.jpg", "center": [450, 420], "scale": 1.4, "joints": joints,
         "joints_vis": vis},
        {"image": "015601864.jpg", "center": [701.0, 401.0], "scale": 1.2,
         "joints": [[-1, -1]] * 9 + [[700.0, 300.0]] + [[-1, -1]] * 6,
         "joints_vis": [0] * 9 + [1] + [0] * 6},
        {"image": "999999999.jpg", "center": [5, 5], "scale": 1.0, "joints": [], "joints_vis": []},
        {"image": "015599452.jpg", "center": [5, 5], "scale": "big"},
        "not a person",
    ]  # fmt: skip
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


@pytest.fixture()
def mpii(tmp_path: Path) -> tuple[Path, Path, Path]:
    return (
        write_release(tmp_path / "mpii_human_pose_v1_u12_1.mat"),
        write_keyframes(tmp_path / "mpii_human_pose_v1_sequences_keyframes.mat"),
        write_json(tmp_path / "mpii_train.json"),
    )


def test_the_written_file_has_the_official_structure(mpii) -> None:
    mat = scipy.io.loadmat(str(mpii[0]))
    release = mat["RELEASE"]
    assert release.dtype.names == (
        "annolist", "img_train", "version", "single_person", "act", "video_list"
    )  # fmt: skip
    annolist = release[0, 0]["annolist"]
    assert annolist.shape == (1, len(IMAGES))
    assert annolist[0, 1]["annorect"].dtype.names == TEST_FIELDS


def test_keyframes_map_each_image_to_its_sequence_frame(mpii) -> None:
    keyframes = load_keyframes(str(mpii[1]))
    assert keyframes["015601864"] == ("00000005.jpg", 1)
    assert keyframes["070807258"] == ("00000021.jpg", 7)
    assert "086617615" not in keyframes


def test_mat_people_boxes_from_joints_else_objpos_and_rejects(mpii) -> None:
    entries, problems = load_mpii_mat(str(mpii[0]), load_keyframes(str(mpii[1])))
    assert len(entries) + len(problems) == sum(len(p) for _, _, p in IMAGES)
    got = {(e.video, e.person): e for e in entries}
    assert set(got) == {("015601864", 0), ("015601864", 1), ("015599452", 0)}
    # Joints: PoseTrack's keypoint box (extent + 30%) in 0-based pixels, square side max(w, h).
    xs = np.array([x for _, x, _ in PLAYER_JOINTS]) - 1
    ys = np.array([y for _, _, y in PLAYER_JOINTS]) - 1
    player = got[("015601864", 0)]
    assert (player.x, player.y) == pytest.approx(
        ((xs.min() + xs.max()) / 2, (ys.min() + ys.max()) / 2)
    )
    side = 1.3 * max(np.ptp(xs), np.ptp(ys))
    assert person_box(player, context=1.0)[2] == pytest.approx(side)
    assert (player.image, player.frame) == ("00000005.jpg", -1)
    # One joint: objpos/scale as given, shifted to 0-based.
    single = got[("015601864", 1)]
    assert (single.x, single.y, single.scale) == pytest.approx((700.0, 400.0, 1.2))
    test_image = got[("015599452", 0)]
    assert (test_image.x, test_image.y, test_image.scale) == pytest.approx((300.0, 200.0, 2.0))
    assert test_image.image == "00000021.jpg"
    reasons = {p.video: p.reason for p in problems}
    assert reasons == {
        "005808361": PEOPLE_NO_BOX,
        "086617615": PEOPLE_UNKNOWN_IMAGE,
        "060111501": PEOPLE_BAD_VALUE,
        "070807258": PEOPLE_INCONSISTENT,
        "016176117": PEOPLE_INCONSISTENT,
    }
    bad_joint = next(p for p in problems if p.video == "060111501")
    assert "annolist(5).annorect(1)" in bad_joint.detail and "joint id 20" in bad_joint.detail


def test_scale_zero_is_a_bad_value(tmp_path: Path) -> None:
    images = [("016176117.jpg", TRAIN_FIELDS, [_person(objpos=(50, 50), scale=0.0)])]
    mat = write_release(tmp_path / "a.mat", images)
    keyframes = write_keyframes(tmp_path / "k.mat", ["016176117/00000001.jpg"])
    entries, problems = load_mpii_mat(str(mat), load_keyframes(str(keyframes)))
    assert entries == [] and [p.reason for p in problems] == [PEOPLE_BAD_VALUE]
    assert "scale must be > 0" in problems[0].detail


def test_json_conversion_reads_like_the_mat(mpii) -> None:
    keyframes = load_keyframes(str(mpii[1]))
    from_mat, _ = load_mpii_mat(str(mpii[0]), keyframes)
    from_json, problems = load_mpii_json(str(mpii[2]), keyframes)
    assert from_json == [e for e in from_mat if e.video == "015601864"]
    assert [p.reason for p in problems] == [
        PEOPLE_UNKNOWN_IMAGE,
        PEOPLE_BAD_VALUE,
        PEOPLE_BAD_VALUE,
    ]


def test_formats_are_detected_and_mpii_needs_keyframes(mpii) -> None:
    assert detect_format(str(mpii[0])) == "mpii-mat"
    assert detect_format(str(mpii[2])) == "mpii-json"
    with pytest.raises(ValueError, match="--people-keyframes"):
        read_people(str(mpii[0]))
    with pytest.raises(ValueError, match="annolist_keyframes"):
        read_people(str(mpii[0]), keyframes=str(mpii[0]))
    with pytest.raises(ValueError, match="RELEASE.annolist"):
        read_people(str(mpii[1]), "mpii-mat", keyframes=str(mpii[1]))


def _sequences(root: Path, shared_data: Path) -> Path:
    """An MPII-style sequence folder ``015601864/00000001.jpg ...`` of the shared real frames."""
    source = shared_data / "posetrack18" / "videos" / "000001_mpiinew_test"
    seq = root / "sequences" / "015601864"
    seq.mkdir(parents=True)
    for k in range(10):
        shutil.copy(source / f"{k:06d}.jpg", seq / f"{k + 1:08d}.jpg")
    return root / "sequences"


def test_pairs_runs_on_the_mpii_mat_around_the_keyframe(mpii, shared_data: Path, tmp_path) -> None:
    sequences = _sequences(tmp_path, shared_data)
    config = PairsConfig(
        videos=(str(sequences),), out=str(tmp_path / "o"), people=str(mpii[0]),
        people_keyframes=str(mpii[1]),
    )  # fmt: skip
    prepared = prepare(config)
    placed = prepared.people["015601864"]
    assert {(e.person, e.frame) for e in placed} == {(0, 4), (1, 4)}  # 00000005.jpg = frame 4
    out = tmp_path / "pairs"
    args = [
        "pairs", "--videos", str(sequences), "--people", str(mpii[0]), "--people-keyframes",
        str(mpii[1]), "--out", str(out), "--offsets", "2", "--crop-size", "64", "--no-progress",
        "--runner", "FnApiRunner",
    ]  # fmt: skip
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    # 8 people in the .mat: 5 set aside while reading, 1 on a sequence that is not an input.
    assert "8 people (mpii-mat, 6 set aside)" in result.output
    counters = json.loads((out / "dataset_info.json").read_text())["counters"]
    assert (counters["people_in"], counters["people_used"], counters["people_rejected"]) == (
        8,
        2,
        6,
    )
    assert counters["pairs_written"] + counters["pairs_rejected"] == counters["pairs_planned"] > 0
    table = pq.read_table(sorted(out.glob("pairs-*.parquet"))[0]).to_pylist()
    assert {r["person"] for r in table} == {0, 1}
    assert {r["video_id"] for r in table} == {"015601864"}
    exact = [r for r in table if r["frame_a"] == 4 and r["person"] == 0]
    assert exact and all(r["box_source_a"] == "people" for r in exact)
    box = person_box(placed[0] if placed[0].person == 0 else placed[1])
    assert exact[0]["crop_box_a"] == pytest.approx(list(box), abs=1e-3)
    rejects = pq.read_table(sorted(out.glob("rejects-*.parquet"))[0]).to_pylist()
    assert sorted(r["reason"] for r in rejects if r["stage"] == "people") == sorted(
        [PEOPLE_NO_BOX, PEOPLE_UNKNOWN_IMAGE, PEOPLE_BAD_VALUE, PEOPLE_INCONSISTENT,
         PEOPLE_INCONSISTENT, "people_unknown_video"]
    )  # fmt: skip
