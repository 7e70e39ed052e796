"""What does one training sample hold, and how are samples batched?

An instance sample is built from one row of ``instances-*.parquet`` (a ``dptrack-build run``
folder) with its arrays from the paired ``dense-*.h5`` (layout: ``schemas/instances.v1.json``,
``schemas/dense.v1.json``):

=====================  ======================================================================
key                    value
=====================  ======================================================================
``image``              ``(3, S, S)`` uint8 RGB person crop (divide by 255 for the model)
``points``             ``(P, 2)`` float32 DensePose points in crop pixels ``(x, y)``, pixel
                       centres on integers: the point at frame ``(X, Y)`` is at
                       ``((X - crop_x) / crop_w * S - 0.5, (Y - crop_y) / crop_h * S - 0.5)``
``point_I``            ``(P,)`` int64 fine part 1..24; ``point_U``, ``point_V`` ``(P,)`` float32
``part_mask``          ``(S, S)`` int64 coarse part 0..14 on the crop grid, all ``-1`` when the
                       row has no masks (nearest: crop pixel centre -> the 256-grid cell of bbox
                       that holds it; outside the bbox is background)
``has_flow``           ``bool``: the row was propagated and carries a flow
``flow_source_image``  ``(3, S, S)`` uint8: the crop of the *source* instance the row was
                       propagated from (only when ``has_flow``)
``flow``               ``(S, S, 2)`` float32: at source-crop pixel ``p``, the position of the same
                       point in ``image`` minus ``p`` (so ``image`` sampled at ``p + flow(p)``
                       looks like ``flow_source_image`` at ``p``); ``flow_valid`` ``(S, S)`` bool
``meta``               provenance dict: ``video_id``, ``frame_index``, ``source_frame_index``,
                       ``offset``, ``annotation_id``, ``track_id``, ``estimator``, ``shard``,
                       ``row``, ``folder``
=====================  ======================================================================

A pair sample is built from one row of ``pairs-*.parquet`` (a ``dptrack-build pairs`` folder,
``schemas/pairs.v1.json``), a directed pair ``frame_a -> frame_b`` of one person, with the same
keys, so the same :func:`collate` and training code take it:

=====================  ======================================================================
key                    value
=====================  ======================================================================
``image``              ``(3, S, S)`` uint8: crop B (``frame_b`` over ``crop_box_b``)
``flow_source_image``  ``(3, S, S)`` uint8: crop A (``frame_a`` over ``crop_box_a``)
``flow``               ``(S, S, 2)`` float32, A -> B as above: at crop-A pixel ``p``, the position
                       of the same point in crop B minus ``p``, in crop-B pixels (channel 0 = x);
                       ``flow_valid`` ``(S, S)`` bool (forward-backward check passed)
``has_flow``           always ``True``
``points`` ...         no labels: ``points`` ``(0, 2)`` float32, ``point_I`` ``(0,)`` int64,
                       ``point_U``, ``point_V`` ``(0,)`` float32, ``part_mask`` all ``-1``
``meta``               ``video_id``, ``frame_index`` (= ``frame_b``), ``source_frame_index``
                       (= ``frame_a``), ``offset``, ``annotation_id`` (-1), ``track_id``
                       (= ``person``), ``estimator``, ``shard``, ``row``, ``folder``
=====================  ======================================================================

:func:`collate` batches samples of either kind: points padded with ``point_I = -1``, flow fields
zero-filled where ``has_flow`` is false. In a ``DataLoader`` worker it builds the batch directly
in shared memory, as PyTorch's own ``default_collate`` does: otherwise the worker copies every
tensor into new shared memory when it hands the batch over (a 23-MB batch of 16 crops with flows
and masks; ``benchmarks/bench_reader.py``, README "Reading shards for training").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from dptrack_pipeline.formats.rle import labels_from_counts
from dptrack_pipeline.shards.reader import DenseReader
from dptrack_pipeline.train.crop_labels import dp_to_crop, mask_on_crop
from dptrack_pipeline.train.shard_index import META_COLUMNS, ShardFile

_INSTANCE_META_COLUMNS = {key: key for key in META_COLUMNS}
"""``meta`` key -> instances column."""
_PAIR_META_COLUMNS = {
    **{key: key for key in META_COLUMNS if key != "annotation_id"},  # pairs carry no labels
    "frame_index": "frame_b",
    "source_frame_index": "frame_a",
    "track_id": "person",
}
"""``meta`` key -> pairs column (``annotation_id`` is -1)."""


def _crop_tensor(reader: DenseReader, dense_file: str, index: int) -> torch.Tensor:
    """Crop ``index`` as a ``(3, S, S)`` uint8 tensor."""
    return torch.from_numpy(reader.crop(dense_file, index, channels_first=True))


def _no_part_mask(size: int) -> torch.Tensor:
    """The ``(S, S)`` part mask of a row without masks: all ``-1`` (unknown)."""
    return torch.full((size, size), -1, dtype=torch.int64)


def _meta(
    record: Mapping[str, Any], columns: Mapping[str, str], shard: ShardFile, row: int, **fixed: Any
) -> dict[str, Any]:
    """``meta``: ``key: record[column]`` for each of ``columns``, ``fixed`` values, then where the
    row came from."""
    meta = {key: record[column] for key, column in columns.items()}
    return {**meta, **fixed, "folder": shard.folder, "shard": shard.name, "row": row}


def instance_sample(
    reader: DenseReader,
    shard: ShardFile,
    row: int,
    record: dict[str, Any],
    sources: Mapping[int, int],
    with_flow_source: bool,
) -> dict[str, Any]:
    """The sample of instance row ``row`` (``record``: its :data:`~.shard_index.COLUMNS`).

    Args:
        sources: ``annotation_id -> crop_index`` of the source rows of the same shard, for the
            propagated rows' ``flow_source_image``.
        with_flow_source: load ``flow_source_image``; without it, or when the source row is not
            in this shard, a propagated row has no flow (``has_flow`` false).
    """
    dense_file = record["dense_file"]
    image = _crop_tensor(reader, dense_file, record["crop_index"])
    size = image.shape[-1]
    bbox, crop_box = record["bbox"], record["crop_box"]
    points = dp_to_crop(record["dp_x"], record["dp_y"], bbox, crop_box, size)
    sample: dict[str, Any] = {
        "image": image,
        "points": torch.from_numpy(points),
        "point_I": torch.as_tensor(np.asarray(record["dp_I"], dtype=np.int64)),
        "point_U": torch.as_tensor(np.asarray(record["dp_U"], dtype=np.float32)),
        "point_V": torch.as_tensor(np.asarray(record["dp_V"], dtype=np.float32)),
    }
    masks = record["dp_masks"]
    if masks:
        labels = labels_from_counts(masks)
        sample["part_mask"] = torch.from_numpy(mask_on_crop(labels, bbox, crop_box, size))
    else:
        sample["part_mask"] = _no_part_mask(size)
    has_flow = record["flow_index"] >= 0
    sample["has_flow"] = has_flow
    if has_flow:
        flow, valid = reader.flow(dense_file, record["flow_index"])
        sample["flow"] = torch.from_numpy(flow)
        sample["flow_valid"] = torch.from_numpy(valid)
        if with_flow_source:
            source = sources.get(record["annotation_id"])
            if source is None:  # the source row is not in this shard: no partner image
                sample["has_flow"] = False
                del sample["flow"], sample["flow_valid"]
            else:
                sample["flow_source_image"] = _crop_tensor(reader, dense_file, source)
    sample["meta"] = _meta(record, _INSTANCE_META_COLUMNS, shard, row)
    return sample


def pair_sample(
    reader: DenseReader, shard: ShardFile, row: int, record: dict[str, Any]
) -> dict[str, Any]:
    """The sample of pair row ``row`` (``record``: its :data:`~.shard_index.PAIR_COLUMNS`)."""
    dense_file = record["dense_file"]
    crop_a = _crop_tensor(reader, dense_file, record["crop_a_index"])
    crop_b = _crop_tensor(reader, dense_file, record["crop_b_index"])
    flow, valid = reader.flow(dense_file, record["flow_index"])
    return {
        "image": crop_b,
        "flow_source_image": crop_a,
        "flow": torch.from_numpy(flow),
        "flow_valid": torch.from_numpy(valid),
        "has_flow": True,
        "points": torch.zeros((0, 2), dtype=torch.float32),
        "point_I": torch.zeros((0,), dtype=torch.int64),
        "point_U": torch.zeros((0,), dtype=torch.float32),
        "point_V": torch.zeros((0,), dtype=torch.float32),
        "part_mask": _no_part_mask(crop_b.shape[-1]),
        "meta": _meta(record, _PAIR_META_COLUMNS, shard, row, annotation_id=-1),
    }


def collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Batch instance or pair samples (use as a DataLoader's ``collate_fn``).

    Returns a dict of stacked tensors: ``image`` ``(B, 3, S, S)`` uint8; ``points`` ``(B, P, 2)``,
    ``point_I`` ``(B, P)`` (``-1`` = padding), ``point_U``, ``point_V``; ``part_mask``
    ``(B, S, S)``; ``has_flow`` ``(B,)`` bool; ``flow`` ``(B, S, S, 2)``, ``flow_valid``
    ``(B, S, S)``, ``flow_source_image`` ``(B, 3, S, S)`` (zeros where ``has_flow`` is false);
    ``offset`` ``(B,)`` int64; ``meta`` a list of the samples' dicts.
    """
    if not samples:
        raise ValueError("empty batch")
    batch = len(samples)
    size = samples[0]["image"].shape[-1]
    most = max(1, max(s["point_I"].shape[0] for s in samples))
    new = _batch_allocator()
    points = new((batch, most, 2), torch.float32, 0)
    point_i = new((batch, most), torch.int64, -1)
    point_u = new((batch, most), torch.float32, 0)
    point_v = new((batch, most), torch.float32, 0)
    flow = new((batch, size, size, 2), torch.float32, None)  # rows are written or zeroed below
    valid = new((batch, size, size), torch.bool, None)
    partner = new((batch, 3, size, size), torch.uint8, None)
    has_flow = new((batch,), torch.bool, 0)
    image = new((batch, *samples[0]["image"].shape), samples[0]["image"].dtype, None)
    part_mask = new((batch, *samples[0]["part_mask"].shape), samples[0]["part_mask"].dtype, None)
    for b, s in enumerate(samples):
        n = s["point_I"].shape[0]
        points[b, :n], point_i[b, :n] = s["points"], s["point_I"]
        point_u[b, :n], point_v[b, :n] = s["point_U"], s["point_V"]
        image[b], part_mask[b] = s["image"], s["part_mask"]
        if s["has_flow"]:
            has_flow[b] = True
            flow[b], valid[b] = s["flow"], s["flow_valid"]
        else:
            flow[b], valid[b] = 0, False
        if s["has_flow"] and "flow_source_image" in s:
            partner[b] = s["flow_source_image"]
        else:
            partner[b] = 0
    return {
        "image": image,
        "points": points,
        "point_I": point_i,
        "point_U": point_u,
        "point_V": point_v,
        "part_mask": part_mask,
        "has_flow": has_flow,
        "flow": flow,
        "flow_valid": valid,
        "flow_source_image": partner,
        "offset": torch.tensor([s["meta"]["offset"] for s in samples], dtype=torch.int64),
        "meta": [s["meta"] for s in samples],
    }


def _batch_allocator() -> Callable[[tuple[int, ...], torch.dtype, float | None], torch.Tensor]:
    """``new(shape, dtype, fill)`` for :func:`collate`'s batch tensors (``fill=None``: left
    uninitialised, every element is written). Inside a ``DataLoader`` worker the tensors live in
    shared memory from the start, so handing the batch to the main process copies nothing; the
    same private storage call PyTorch's ``default_collate`` makes for it, with a plain allocation
    where it is missing."""
    shared = torch.utils.data.get_worker_info() is not None and hasattr(
        torch.UntypedStorage, "_new_shared"
    )

    def new(shape: tuple[int, ...], dtype: torch.dtype, fill: float | None) -> torch.Tensor:
        if shared:
            numel = int(np.prod(shape))
            storage = torch.UntypedStorage._new_shared(numel * dtype.itemsize)
            out = torch.empty(0, dtype=dtype).set_(storage, 0, shape)
        else:
            out = torch.empty(shape, dtype=dtype)
        if fill is not None:
            out.fill_(fill)
        return out

    return new
