"""Run a model over the annotated instances of shard folders and score it.

Always reported: ``part_accuracy`` (percentage of annotated points whose predicted fine part is
the annotated one) and ``uv_error`` (mean ``|U' - U| + |V' - V|`` over those points). With a
surface to measure on, the paper's metric (:func:`~dptrack_pipeline.train.evaluate.ratio_within`):
the percentage of points whose predicted surface point lies within 5, 10 and 20 cm of the truth,
geodesically, on

* the synthetic bodies of a ``dptrack-build synth`` folder (``truth``), person by person
  (:class:`~dptrack_pipeline.train.synth_surface.SynthSurface`, keyed by video and track), or
* SMPL, with the DensePose evaluation assets (``geodesic_assets``,
  :mod:`~dptrack_pipeline.train.geodesic`).

The predicted surface point at an annotated point is read from the last stack
(:func:`~dptrack_pipeline.train.evaluate.predictions_at_points`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from dptrack_pipeline.train.dataset import ShardDataset
from dptrack_pipeline.train.evaluate import predictions_at_points, ratio_within
from dptrack_pipeline.train.samples import collate


@torch.no_grad()
def collect_predictions(
    model: torch.nn.Module,
    folders: Sequence[str],
    device: torch.device | str = "cpu",
    batch_size: int = 32,
) -> dict[str, np.ndarray]:
    """Ground truth and prediction at every annotated point of the folders' source instances.

    Returns arrays of one entry per point: ``gt_I, gt_U, gt_V, pred_I, pred_U, pred_V`` and
    ``video_id`` (str), ``track_id``.
    """
    dataset = ShardDataset(list(folders), include="sources", shuffle=False, with_flow_source=False)
    was_training = model.training
    model.eval()
    columns: dict[str, list[np.ndarray]] = {k: [] for k in (
        "gt_I", "gt_U", "gt_V", "pred_I", "pred_U", "pred_V", "video_id", "track_id")}  # fmt: skip
    samples: list[dict[str, Any]] = []

    def flush() -> None:
        batch = collate(samples)
        images = batch["image"].to(device).float() / 255.0
        last = model(images)[-1]
        size = images.shape[-1]
        stride = size // last.part_logits.shape[-1]
        pred_i, pred_u, pred_v = predictions_at_points(
            last.part_logits, last.u, last.v, batch["points"].to(device),
            size, stride,
        )  # fmt: skip
        keep = batch["point_I"] > 0
        columns["gt_I"].append(batch["point_I"][keep].numpy())
        columns["gt_U"].append(batch["point_U"][keep].numpy())
        columns["gt_V"].append(batch["point_V"][keep].numpy())
        columns["pred_I"].append(pred_i.cpu()[keep].numpy())
        columns["pred_U"].append(pred_u.cpu()[keep].float().numpy())
        columns["pred_V"].append(pred_v.cpu()[keep].float().numpy())
        counts = keep.sum(1).numpy()
        columns["video_id"].append(
            np.repeat(np.array([m["video_id"] for m in batch["meta"]], dtype=object), counts)
        )
        columns["track_id"].append(np.repeat([m["track_id"] for m in batch["meta"]], counts))
        samples.clear()

    try:
        for sample in dataset:
            samples.append(sample)
            if len(samples) == batch_size:
                flush()
        if samples:
            flush()
    finally:
        model.train(was_training)
    if not columns["gt_I"]:
        raise ValueError(f"no annotated instance in {list(folders)}")
    return {key: np.concatenate(value) for key, value in columns.items()}


def synth_distances_cm(truth: str, predictions: dict[str, np.ndarray]) -> np.ndarray:
    """Surface distance of each prediction on its synthetic person (``inf`` off the body)."""
    from dptrack_pipeline.train.synth_surface import SynthSurface, synth_people

    out = np.full(predictions["gt_I"].shape, np.inf)
    surfaces: dict[tuple[str, int], SynthSurface] = {}
    for video in np.unique(predictions["video_id"]):
        people = synth_people(truth, video)
        for track, person in people.items():
            surfaces[(str(video), int(track))] = SynthSurface(person)
    keys = list(zip(predictions["video_id"], predictions["track_id"], strict=True))
    for key in set(keys):
        rows = np.array([k == key for k in keys])
        surface = surfaces.get((str(key[0]), int(key[1])))
        if surface is None:
            raise KeyError(f"video {key[0]} track {key[1]} is not a person of {truth}")
        p = {name: values[rows] for name, values in predictions.items()}
        out[rows] = surface.distance_cm(
            p["gt_I"], p["gt_U"], p["gt_V"], p["pred_I"], p["pred_U"], p["pred_V"]
        )
    return out


def evaluate_model(
    model: torch.nn.Module,
    folders: Sequence[str],
    device: torch.device | str = "cpu",
    truth: str | None = None,
    geodesic_assets: str | None = None,
) -> dict[str, float]:
    """Scores of ``model`` on the annotated instances of ``folders`` (see the module docstring)."""
    p = collect_predictions(model, folders, device)
    right = p["pred_I"] == p["gt_I"]
    uv = np.abs(p["pred_U"] - p["gt_U"]) + np.abs(p["pred_V"] - p["gt_V"])
    scores: dict[str, float] = {
        "part_accuracy": float(100.0 * right.mean()),
        "uv_error": float(uv[right].mean()) if right.any() else float("nan"),
        "num_points": float(right.size),
    }
    if truth:
        scores.update(ratio_within(synth_distances_cm(truth, p)))
    elif geodesic_assets:
        from dptrack_pipeline.train.geodesic import GeodesicAssets, surface_distances_cm

        assets = GeodesicAssets.load(geodesic_assets)
        scores.update(
            ratio_within(
                surface_distances_cm(
                    assets, p["gt_I"], p["gt_U"], p["gt_V"], p["pred_I"], p["pred_U"], p["pred_V"]
                )
            )
        )
    return scores
