"""How good are the point checks? Precision and recall of every setting against exact truth.

The defaults of :mod:`dptrack_pipeline.propagate.checks` are chosen here, by measurement, on the
real benchmarks in ``../shared/data`` and on the synthetic set:

* **MPI-Sintel** (alley_1, cave_2, market_5; clean and final passes): the points are a regular
  grid over frame 2 (every :data:`GRID_STRIDE`-th pixel), moved to frame 3 with the estimator's
  flow and scored exactly as the pipeline scores a DensePose point
  (:func:`~dptrack_pipeline.propagate.points.move_points`, forward-backward, ZNCC, chain through
  frame 4: the neighbour of a ``k = +1`` target is ``T + 2``). Truth: the exact flow 2 -> 3 and the
  occlusion and invalid masks; a point is *visible* when neither mask marks it.
* **Middlebury RubberWhale** (frames 10 -> 11, exact flow): two frames, so no chain; *visible*
  where the true flow is known.
* **The synthetic set** (``dptrack-build synth``, exact flow and visibility at T ± 1..3): a real
  ``run`` with every check's threshold out of reach, so that each point keeps its scores; each
  setting is then applied to the rows and scored by :func:`~dptrack_pipeline.synth.score.
  score_propagation`.

A kept point is *correct* when it is visible and lands within :data:`NEAR_PX` (3 px) of its true
position; **precision** = correct / kept, the **wrong-label rate** = 1 - precision, **recall** =
visible points kept / visible points. The chosen setting (:func:`choose`) minimises the
wrong-label rate pooled over the six Sintel pairs among the settings whose recall is at least
:data:`MIN_RECALL_RATIO` (0.8) of the 5 px forward-backward check alone.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dptrack_pipeline.flow.io import known_flow_mask, read_flo
from dptrack_pipeline.flow.quality import census, grey, roc_auc
from dptrack_pipeline.flow.registry import FlowEstimator
from dptrack_pipeline.flow.sampling import pixel_grid
from dptrack_pipeline.propagate.checks import Checks
from dptrack_pipeline.propagate.points import DROPPED_OUTSIDE, Evidence, move_points

NEAR_PX = 3.0
FAR_PX = 10.0
"""The AUC of a score separates points within :data:`NEAR_PX` from points beyond this."""
MIN_RECALL_RATIO = 0.8
GRID_STRIDE = 2
SINTEL = ("alley_1", "cave_2", "market_5")
PASSES = ("clean", "final")

FB_THRESHOLDS = (1.0, 1.5, 2.0, 3.0, 4.0, 5.0)
PHOTO_THRESHOLDS = (None, 0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
CHAIN_THRESHOLDS = (None, 1.0, 2.0, 3.0, 5.0)
OUT_OF_REACH = Checks(fb_threshold=1e9, photometric=-1.0, chain=1e9)
"""Checks that drop nothing but outside points, so every point keeps its scores."""


@dataclass(frozen=True, eq=False)
class ScoredPoints:
    """Points of one frame pair with their scores and their truth, ``(N,)`` each: ``fb`` (px),
    ``photo`` (ZNCC), ``chain`` (px; NaN when not applicable), ``inside`` (did not leave the
    frame), ``error`` (px from the true position), ``visible`` (truth); ``census`` (the census
    distance, measured to compare photometric scores; NaN where not computed)."""

    name: str
    fb: np.ndarray
    photo: np.ndarray
    chain: np.ndarray
    inside: np.ndarray
    error: np.ndarray
    visible: np.ndarray
    census: np.ndarray | None = None

    @property
    def correct(self) -> np.ndarray:
        return self.visible & (self.error <= NEAR_PX)


def settings_grid() -> list[Checks]:
    """Every combination of :data:`FB_THRESHOLDS`, :data:`PHOTO_THRESHOLDS` and
    :data:`CHAIN_THRESHOLDS`."""
    return [
        Checks(fb_threshold=fb, photometric=photo, chain=chain)
        for fb, photo, chain in itertools.product(FB_THRESHOLDS, PHOTO_THRESHOLDS, CHAIN_THRESHOLDS)
    ]


def kept(points: ScoredPoints, checks: Checks) -> np.ndarray:
    """Which points ``checks`` keep (NaN scores pass, as in the pipeline)."""
    keep = points.inside & (points.fb <= checks.fb_threshold)
    if checks.photometric is not None:
        keep &= ~(points.photo < checks.photometric)
    if checks.chain is not None:
        keep &= ~(points.chain > checks.chain)
    return keep


def precision_recall(points: Sequence[ScoredPoints], checks: Checks) -> tuple[float, float]:
    """Pooled precision and recall of ``checks`` over ``points`` (module docstring)."""
    n_kept = n_correct = n_kept_visible = n_visible = 0
    for p in points:
        keep = kept(p, checks)
        n_kept += int(keep.sum())
        n_correct += int((keep & p.correct).sum())
        n_kept_visible += int((keep & p.visible).sum())
        n_visible += int(p.visible.sum())
    precision = n_correct / n_kept if n_kept else float("nan")
    return precision, n_kept_visible / n_visible if n_visible else float("nan")


def score_aucs(points: Sequence[ScoredPoints]) -> dict[str, float]:
    """AUC of each score (higher = better label) for points within 3 px vs beyond 10 px."""
    good = [p.inside & (p.error <= NEAR_PX) for p in points]
    bad = [p.inside & (p.error > FAR_PX) for p in points]
    out = {}
    nan = [np.full(len(p.fb), np.nan, np.float32) for p in points]
    for name, sign in (("fb", -1.0), ("photo", 1.0), ("chain", -1.0), ("census", -1.0)):
        values = [
            sign * (v if (v := getattr(p, name)) is not None else n)
            for p, n in zip(points, nan, strict=True)
        ]
        g = np.concatenate([v[m] for v, m in zip(values, good, strict=True)])
        b = np.concatenate([v[m] for v, m in zip(values, bad, strict=True)])
        g, b = g[np.isfinite(g)], b[np.isfinite(b)]
        if len(g) and len(b):
            out[name] = roc_auc(g, b)
    return out


def choose(
    points: Sequence[ScoredPoints], candidates: Iterable[Checks]
) -> tuple[Checks, list[tuple[Checks, float, float]]]:
    """The setting of lowest wrong-label rate with recall >= 0.8x that of FB 5 px alone (ties:
    higher recall), and every candidate's ``(checks, precision, recall)``."""
    _, base_recall = precision_recall(points, Checks(fb_threshold=5.0))
    table = [(c, *precision_recall(points, c)) for c in candidates]
    allowed = [row for row in table if row[2] >= MIN_RECALL_RATIO * base_recall]
    best = min(allowed, key=lambda row: (1.0 - row[1], -row[2]))
    return best[0], table


def _score_pair(
    name: str,
    frames: dict[int, np.ndarray],
    truth: np.ndarray,
    visible: np.ndarray,
    estimator: FlowEstimator,
    chain_via: int | None,
) -> ScoredPoints:
    """Points of frame 0 moved to frame 1 (``frames`` keyed 0, 1 and ``chain_via``)."""
    pairs = [(0, 1), (1, 0)] + ([(0, chain_via), (chain_via, 1)] if chain_via else [])
    results = estimator.estimate_batch([(frames[a], frames[b]) for a, b in pairs])
    flows = dict(zip(pairs, results, strict=True))
    height, width = truth.shape[:2]
    points = pixel_grid(height, width)[::GRID_STRIDE, ::GRID_STRIDE].reshape(-1, 2)
    evidence = Evidence(
        source_grey=grey(frames[0]),
        target_grey=grey(frames[1]),
        first_leg=flows.get((0, chain_via)),
        second_leg=flows.get((chain_via, 1)),
    )
    status = move_points(points, flows[(0, 1)], flows[(1, 0)], OUT_OF_REACH, None, evidence)
    cols, rows = points[:, 0].astype(int), points[:, 1].astype(int)
    true_position = points + truth[rows, cols]
    census_distance = census(evidence.source_grey, evidence.target_grey, points, status.moved)
    return ScoredPoints(
        name=name,
        fb=status.error,
        photo=status.photo,
        chain=status.chain,
        inside=status.status != DROPPED_OUTSIDE,
        error=np.hypot(*(status.moved - true_position).T).astype(np.float32),
        visible=visible[rows, cols],
        census=census_distance,
    )


def _rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def sintel_points(data: str | os.PathLike, estimator: FlowEstimator) -> list[ScoredPoints]:
    """The six shared MPI-Sintel pairs 2 -> 3 (chain through frame 4), scored."""
    root = Path(data) / "flow" / "sintel"
    out = []
    for sequence, passname in itertools.product(SINTEL, PASSES):
        folder = root / sequence if passname == "clean" else root / sequence / "final"
        frames = {0: _rgb(folder / "frame_0002.png"), 1: _rgb(folder / "frame_0003.png")}
        frames[2] = _rgb(folder / "frame_0004.png")
        gt = root / sequence / "gt"
        occluded = cv2.imread(str(gt / "occlusions" / "frame_0002.png"), cv2.IMREAD_GRAYSCALE)
        invalid = cv2.imread(str(gt / "invalid" / "frame_0002.png"), cv2.IMREAD_GRAYSCALE)
        visible = (occluded < 128) & (invalid < 128)
        truth = read_flo(gt / "frame_0002.flo")
        name = f"sintel/{sequence}/{passname}"
        out.append(_score_pair(name, frames, truth, visible, estimator, chain_via=2))
    return out


def middlebury_points(data: str | os.PathLike, estimator: FlowEstimator) -> ScoredPoints:
    """Middlebury RubberWhale 10 -> 11, scored (no chain: two frames)."""
    folder = Path(data) / "flow" / "middlebury" / "RubberWhale"
    frames = {0: _rgb(folder / "frame10.png"), 1: _rgb(folder / "frame11.png")}
    truth = read_flo(folder / "flow10.flo")
    known = known_flow_mask(truth)
    truth = np.where(known[..., None], truth, 0.0).astype(np.float32)
    return _score_pair("middlebury/RubberWhale", frames, truth, known, estimator, chain_via=None)


def synth_points(
    synth_dir: str | os.PathLike, estimator: str, out_dir: str | os.PathLike
) -> list[ScoredPoints]:
    """The synthetic set's DensePose points propagated by a real ``run`` with every threshold out
    of reach (:data:`OUT_OF_REACH`), one :class:`ScoredPoints` per ``|k|``: a point dropped as
    outside, or whose target instance is missing, is not ``inside``."""
    from dptrack_pipeline.propagate.config import PropagateConfig
    from dptrack_pipeline.shards import read_instances
    from dptrack_pipeline.structures import dp_to_pixels
    from dptrack_pipeline.synth.score import true_positions
    from dptrack_pipeline.synth.truth import load_flow_truth, load_truth_index
    from pipelines.propagate import run

    config = PropagateConfig(
        annotations=str(Path(synth_dir) / "annotations.json"),
        frames_root=str(synth_dir),
        out=str(out_dir),
        estimator=estimator,
        preset="paper",
        fb_threshold=OUT_OF_REACH.fb_threshold,
        photometric_check=f"zncc:{OUT_OF_REACH.photometric}",
        chain_check=OUT_OF_REACH.chain,
        crop_size=32,
    )
    os.makedirs(out_dir, exist_ok=True)
    run(config, ["--runner", "FnApiRunner"])
    rows = read_instances(str(out_dir)).to_pylist()
    sources = {(r["video_id"], r["annotation_id"]): r for r in rows if r["offset"] == 0}
    targets = {(r["video_id"], r["annotation_id"], r["offset"]): r for r in rows if r["offset"]}
    index = load_truth_index(synth_dir)
    columns: dict[int, dict[str, list]] = {}
    for video in index["videos"]:
        for frame, target in video["flow_pairs"]:
            k = target - frame
            flow, visible_map = load_flow_truth(synth_dir, video["video_id"], frame, target)
            for (video_id, annotation), source in sources.items():
                if video_id != video["video_id"] or source["frame_index"] != frame:
                    continue
                bbox = tuple(source["bbox"])
                points = dp_to_pixels(source["dp_x"], source["dp_y"], bbox).astype(np.float64)
                truth, visible = true_positions(points, flow, visible_map)
                n = len(points)
                scores = {name: np.full(n, np.nan, np.float32) for name in ("fb", "photo", "chain")}
                moved = np.full((n, 2), np.nan)
                row = targets.get((video_id, annotation, k))
                if row is not None:
                    index_kept = np.asarray(row["dp_source_index"], np.int64)
                    moved[index_kept] = dp_to_pixels(row["dp_x"], row["dp_y"], tuple(row["bbox"]))
                    for name, column in (
                        ("fb", "dp_fb_error"),
                        ("photo", "dp_photo"),
                        ("chain", "dp_chain_error"),
                    ):
                        scores[name][index_kept] = row[column]
                inside = np.isfinite(moved[:, 0])
                error = np.where(inside, np.hypot(*(moved - truth).T), np.inf)
                acc = columns.setdefault(abs(k), {n: [] for n in ("fb", "photo", "chain", "in")})
                for name in ("fb", "photo", "chain"):
                    acc[name].append(scores[name])
                acc["in"].append((inside, error.astype(np.float32), visible))
    out = []
    for k in sorted(columns):
        acc = columns[k]
        inside, error, visible = (np.concatenate(parts) for parts in zip(*acc["in"], strict=True))
        out.append(
            ScoredPoints(
                name=f"synth/|k|={k}",
                fb=np.concatenate(acc["fb"]),
                photo=np.concatenate(acc["photo"]),
                chain=np.concatenate(acc["chain"]),
                inside=inside,
                error=error,
                visible=visible,
            )
        )
    return out
