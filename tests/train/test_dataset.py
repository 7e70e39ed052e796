"""The shard dataset: partitioning across workers and ranks, sample conventions, determinism."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from dptrack_pipeline.formats.rle import SURFACE_TO_MASK_PART
from dptrack_pipeline.train import partition
from dptrack_pipeline.train.crop_labels import mask_on_crop
from dptrack_pipeline.train.dataset import ShardDataset
from dptrack_pipeline.train.samples import collate


def _all_rows(dataset: ShardDataset) -> set[tuple[int, int]]:
    return {(i, r) for i, f in enumerate(dataset.files) for r in range(f.num_rows)}


@pytest.mark.parametrize("split", ["auto", "files", "rows"])
@pytest.mark.parametrize(("world", "workers"), [(1, 1), (1, 2), (2, 2), (3, 2), (2, 1)])
def test_consumers_partition_the_rows(train_shards, monkeypatch, split, world, workers) -> None:
    _, shards = train_shards
    taken: list[tuple[int, int]] = []
    for rank in range(world):
        dataset = ShardDataset(shards, split=split, rank=rank, world_size=world, seed=3)
        if split == "files" and len(dataset.files) < world * workers:
            continue  # file split leaves consumers idle, still without overlap or loss
        for worker in range(workers):
            monkeypatch.setattr(partition, "_consumer", lambda w=worker: (w, workers))
            taken += [(i, int(r)) for i, rows in dataset.assignment() for r in rows]
    if not taken:
        return
    assert len(taken) == len(set(taken))  # no overlap
    assert set(taken) == _all_rows(ShardDataset(shards))  # no loss


def test_dataloader_workers_see_every_row_once(train_shards) -> None:
    _, shards = train_shards
    dataset = ShardDataset(shards, seed=1, split="rows")
    loader = DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=collate)
    seen = [(m["shard"], m["row"]) for batch in loader for m in batch["meta"]]
    assert len(seen) == len(set(seen)) == dataset.num_rows


def test_files_are_dealt_by_row_count() -> None:
    """A DataLoader takes batches from its workers in turn, so file splits balance rows: 4 files of
    56-168 rows dealt to 2 consumers give 224 rows each (dealt in turn, one would get 164 and the
    other 284); "auto" falls back to rows when files cannot be dealt evenly."""
    rows = [56, 116, 108, 168]
    for epoch in range(4):
        loads = []
        for k in range(2):
            parts = partition.assign(rows, k, 2, split="files", seed=0, epoch=epoch, shuffle=True)
            loads.append(sum(len(r) for _, r in parts))
        assert loads == [224, 224]
    dealt = partition.deal_files([3, 2, 1, 0], rows, 2)
    assert dealt == [[3, 0], [2, 1]]  # largest first, each consumer's files in epoch order
    auto = partition.assign([100, 10], 0, 2, split="auto", seed=0, epoch=0, shuffle=False)
    assert [(i, list(r)) for i, r in auto] == [(0, list(range(0, 100, 2))), (1, [0, 2, 4, 6, 8])]
    even = partition.assign([50, 52, 49, 51], 1, 2, split="auto", seed=0, epoch=0, shuffle=False)
    assert sorted(i for i, _ in even) == [0, 3]  # dealt whole: 51 + 50 (consumer 0: 52 + 49)


def test_batches_from_a_worker_equal_batches_built_in_process(train_shards) -> None:
    """In a worker, collate builds the batch in shared memory (no copy at hand-over); the
    batches are the same as without workers, tensor for tensor."""
    _, shards = train_shards
    dataset = ShardDataset(shards, seed=2, split="rows")
    here = list(DataLoader(dataset, batch_size=5, num_workers=0, collate_fn=collate))
    there = list(DataLoader(dataset, batch_size=5, num_workers=1, collate_fn=collate))
    assert len(here) == len(there) > 1
    for a, b in zip(here, there, strict=True):
        assert a.keys() == b.keys()
        for key, value in a.items():
            if isinstance(value, torch.Tensor):
                assert value.dtype == b[key].dtype and value.shape == b[key].shape, key
                assert torch.equal(value, b[key]), key
        assert a["meta"] == b["meta"]


def test_order_is_seeded_and_changes_with_the_epoch(train_shards) -> None:
    _, shards = train_shards

    def order(**kw) -> list[tuple[str, int]]:
        epoch = kw.pop("epoch", 0)
        dataset = ShardDataset(shards, with_flow_source=False, **kw)
        dataset.set_epoch(epoch)
        return [(s["meta"]["shard"], s["meta"]["row"]) for s in dataset]

    assert order(seed=5) == order(seed=5)
    assert order(seed=5) != order(seed=6)
    assert order(seed=5) != order(seed=5, epoch=1)
    assert sorted(order(seed=5)) == sorted(order(seed=5, epoch=1))
    plain = order(shuffle=False)
    assert plain == sorted(plain)
    buffered = order(seed=5, shuffle_buffer=8)
    assert sorted(buffered) == sorted(plain) and buffered != order(seed=5)


def test_include_filters_sources_and_propagated(train_shards) -> None:
    _, shards = train_shards
    sources = list(ShardDataset(shards, include="sources", shuffle=False))
    propagated = list(ShardDataset(shards, include="propagated", shuffle=False))
    assert sources and propagated
    assert all(s["meta"]["offset"] == 0 and not s["has_flow"] for s in sources)
    assert all(s["meta"]["offset"] != 0 and s["has_flow"] for s in propagated)
    assert len(sources) + len(propagated) == ShardDataset(shards).num_rows


def test_points_fall_on_their_part_in_the_mask(train_shards) -> None:
    # Two independent paths to the crop grid (points via crop_coordinates, masks via
    # mask_on_crop) must agree: a point's coarse part is the mask's part under it.
    _, shards = train_shards
    agree = total = 0
    for sample in ShardDataset(shards, include="sources", shuffle=False):
        mask = sample["part_mask"].numpy()
        size = mask.shape[0]
        xy = np.rint(sample["points"].numpy()).astype(int)
        inside = (xy >= 0).all(1) & (xy < size).all(1)
        expected = SURFACE_TO_MASK_PART[sample["point_I"].numpy()[inside]]
        agree += int((mask[xy[inside, 1], xy[inside, 0]] == expected).sum())
        total += int(inside.sum())
    assert total > 500
    assert agree / total > 0.9  # 32-px crops: points on part borders may round to a neighbour


def _true_crop_flow(synth: Path, meta: dict, source_box, target_box, size: int) -> np.ndarray:
    """The crop flow computed from the synthetic set's exact frame flow."""
    import cv2

    from dptrack_pipeline.crops import crop_pixel_centres
    from dptrack_pipeline.synth.truth import load_flow_truth

    frame_flow, _ = load_flow_truth(
        synth, meta["video_id"], meta["source_frame_index"], meta["frame_index"]
    )
    centres = crop_pixel_centres(tuple(source_box), size)
    moved = centres + cv2.remap(frame_flow, centres[..., 0], centres[..., 1], cv2.INTER_LINEAR)
    x0, y0, w, h = target_box
    grid = np.arange(size, dtype=np.float32)
    return np.stack(
        [
            (moved[..., 0] - x0) * size / w - 0.5 - grid[None, :],
            (moved[..., 1] - y0) * size / h - 0.5 - grid[:, None],
        ],
        axis=-1,
    )


def test_flow_pairs_the_source_crop_with_the_crop(train_shards) -> None:
    # (1) the stored flow is close to the exact one; (2) the image warped by the exact flow
    # matches flow_source_image: the partner is the right crop and the direction is A -> image.
    import cv2
    import pyarrow.parquet as pq

    synth, shards = train_shards
    flow_errors, warped_errors, unwarped_errors = [], [], []
    for sample in ShardDataset(shards, include="propagated", shuffle=False):
        meta = sample["meta"]
        table = pq.read_table(Path(meta["folder"]) / meta["shard"]).to_pylist()
        row = table[meta["row"]]
        source = next(
            r for r in table if r["annotation_id"] == row["annotation_id"] and r["offset"] == 0
        )
        size = sample["flow"].shape[0]
        truth = _true_crop_flow(synth, meta, source["crop_box"], row["crop_box"], size)
        valid = sample["flow_valid"].numpy()
        flow_errors.append(np.median(np.abs(sample["flow"].numpy() - truth)[valid]))
        image = sample["image"].numpy().transpose(1, 2, 0).astype(np.float32)
        partner = sample["flow_source_image"].numpy().transpose(1, 2, 0).astype(np.float32)
        grid = np.arange(size, dtype=np.float32)
        map_x = grid[None, :] + truth[..., 0]
        map_y = grid[:, None] + truth[..., 1]
        warped = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR)
        inside = (map_x >= 0) & (map_x <= size - 1) & (map_y >= 0) & (map_y <= size - 1)
        warped_errors.append(np.abs(warped - partner)[inside].mean())
        unwarped_errors.append(np.abs(image - partner)[inside].mean())
    assert len(flow_errors) > 10
    assert np.median(flow_errors) < 1.0  # crop pixels
    assert np.median(warped_errors) < 0.7 * np.median(unwarped_errors)


def test_mask_on_crop_convention() -> None:
    labels = np.zeros((256, 256), dtype=np.uint8)
    labels[:, 128:] = 3  # right half of the bbox is part 3
    # crop_box twice the bbox, centred: the bbox spans crop pixels 8..23 of 32.
    out = mask_on_crop(labels, (10, 10, 20, 20), (0, 0, 40, 40), 32)
    assert (out[:, :8] == 0).all() and (out[:, 24:] == 0).all()
    assert (out[8:24, 8:16] == 0).all() and (out[8:24, 16:24] == 3).all()
    assert (out[:8] == 0).all()


def test_collate_pads_and_the_dataset_pickles_small(train_shards) -> None:
    _, shards = train_shards
    dataset = ShardDataset(shards, shuffle=False)
    assert len(pickle.dumps(dataset)) < 20_000
    samples = list(dataset)[:6]
    batch = collate(samples)
    most = max(s["point_I"].shape[0] for s in samples)
    assert batch["points"].shape == (6, most, 2)
    for b, s in enumerate(samples):
        n = s["point_I"].shape[0]
        assert (batch["point_I"][b, n:] == -1).all()
        assert bool(batch["has_flow"][b]) == s["has_flow"]
        if not s["has_flow"]:
            assert not batch["flow_valid"][b].any()
    assert batch["image"].dtype == torch.uint8


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no instances"):
        ShardDataset(tmp_path)
    with pytest.raises(ValueError, match="include"):
        ShardDataset([], include="labelled")
