"""Part-mask RLE helpers: decoding, label maps, round trips, and the checks pycocotools skips."""

from __future__ import annotations

import numpy as np
import pycocotools.mask as mask_utils
import pytest

from dptrack_pipeline.formats.rle import (
    MASK_PART_NAMES,
    SURFACE_TO_MASK_PART,
    decode_part_masks,
    decode_rle,
    encode_part_masks,
    to_compressed_rle,
)


def _rectangle_rle(rows: slice, cols: slice, size: tuple[int, int] = (256, 256)) -> dict:
    mask = np.zeros(size, dtype=np.uint8)
    mask[rows, cols] = 1
    return mask_utils.encode(np.asfortranarray(mask))  # counts as bytes, the pycocotools way


def test_part_names_follow_the_data_format_order():
    assert len(MASK_PART_NAMES) == 14
    assert MASK_PART_NAMES[0] == "Torso"
    assert MASK_PART_NAMES[5] == "Upper Leg Right"
    assert MASK_PART_NAMES[9] == "Upper Arm Left"
    assert MASK_PART_NAMES[13] == "Head"


def test_surface_to_mask_part_matches_the_data_format():
    # Surface patches per part, as listed in the DensePose data_format.md.
    patches = {
        "Torso": (1, 2),
        "Right Hand": (3,),
        "Left Hand": (4,),
        "Left Foot": (5,),
        "Right Foot": (6,),
        "Upper Leg Right": (7, 9),
        "Upper Leg Left": (8, 10),
        "Lower Leg Right": (11, 13),
        "Lower Leg Left": (12, 14),
        "Upper Arm Left": (15, 17),
        "Upper Arm Right": (16, 18),
        "Lower Arm Left": (19, 21),
        "Lower Arm Right": (20, 22),
        "Head": (23, 24),
    }
    expected = np.zeros(25, dtype=np.uint8)
    for name, surface_parts in patches.items():
        expected[list(surface_parts)] = MASK_PART_NAMES.index(name) + 1
    np.testing.assert_array_equal(SURFACE_TO_MASK_PART, expected)
    assert sorted(np.unique(SURFACE_TO_MASK_PART[1:])) == list(range(1, 15))
    with pytest.raises(ValueError):
        SURFACE_TO_MASK_PART[3] = 0  # read-only: a shared table


def test_decode_rle_accepts_bytes_and_str_counts_with_row_major_result():
    rle = _rectangle_rle(slice(10, 20), slice(30, 45))
    from_bytes = decode_rle(rle)
    from_str = decode_rle({"size": [256, 256], "counts": rle["counts"].decode()})
    assert from_bytes.dtype == np.uint8 and from_bytes.shape == (256, 256)
    assert from_bytes.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(from_bytes, from_str)
    rows, cols = np.nonzero(from_bytes)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (10, 19, 30, 44)


def test_decode_rle_accepts_uncompressed_counts():
    mask = np.zeros((256, 256), dtype=np.uint8)
    mask[100:140, 7:9] = 1
    mask[0, 0] = 1
    flat = mask.flatten(order="F")  # COCO runs are column-major, starting with a 0-run
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat[0] == 1:
        runs = [0, *runs]
    np.testing.assert_array_equal(decode_rle({"size": [256, 256], "counts": runs}), mask)
    compressed = to_compressed_rle({"size": [256, 256], "counts": runs})
    assert isinstance(compressed["counts"], str)
    np.testing.assert_array_equal(decode_rle(compressed), mask)


def test_decode_rle_other_size_when_asked():
    rle = _rectangle_rle(slice(0, 5), slice(0, 3), size=(64, 32))
    assert decode_rle(rle, size=(64, 32)).sum() == 15
    with pytest.raises(ValueError, match=r"size is \[64, 32\], expected \[256, 256\]"):
        decode_rle(rle)


@pytest.mark.parametrize(
    ("rle", "message"),
    [
        ({"size": [256, 256], "counts": "T3"}, "add up to 100, expected 65536"),
        ({"size": [256, 256], "counts": ""}, "add up to 0, expected 65536"),
        ({"size": [256, 256], "counts": "Z`7:f7X"}, "ends in the middle"),
        ({"size": [256, 256], "counts": "Z`7:f7~~"}, "invalid character"),
        ({"size": [256, 256], "counts": "Z`7é"}, "not ASCII"),
        ({"size": [256, 256], "counts": [65537]}, "add up to 65537"),
        ({"size": [256, 256], "counts": [-1, 65537]}, "negative"),
        ({"size": [256, 256], "counts": [1.5, 65534.5]}, "list of integers"),
        ({"size": [256, 256], "counts": 17}, "must be str, bytes or a list"),
        ({"size": [256], "counts": "T3"}, r"\[height, width\]"),
        ({"counts": "T3"}, "'counts' and 'size'"),
        (["T3"], "must be a dict"),
    ],
)
def test_decode_rle_rejects_malformed_rle(rle, message):
    with pytest.raises(ValueError, match=message):
        decode_rle(rle)


def test_short_rle_would_decode_to_garbage_in_pycocotools():
    """Why decode_rle checks run totals: pycocotools itself accepts a too-short RLE."""
    raw = mask_utils.decode({"size": [256, 256], "counts": b"T3"})
    assert raw.shape == (256, 256)  # no error from pycocotools ...
    with pytest.raises(ValueError):
        decode_rle({"size": [256, 256], "counts": "T3"})  # ... but one here


def test_decode_part_masks_later_parts_overwrite_and_empty_entries():
    masks: list = [None] * 14
    masks[0] = _rectangle_rle(slice(0, 100), slice(0, 100))  # Torso
    masks[13] = _rectangle_rle(slice(50, 60), slice(50, 60))  # Head, overlapping the torso
    masks[4] = {}
    masks[5] = []
    labels = decode_part_masks(masks)
    assert labels.dtype == np.uint8 and labels.shape == (256, 256)
    assert labels[55, 55] == 14
    assert labels[10, 10] == 1
    assert labels[200, 200] == 0
    assert (labels == 14).sum() == 100
    assert (labels == 1).sum() == 100 * 100 - 100
    assert set(np.unique(labels)) == {0, 1, 14}


@pytest.mark.parametrize("count", [0, 13, 15])
def test_decode_part_masks_needs_14_entries(count):
    with pytest.raises(ValueError, match=f"14 entries, got {count}"):
        decode_part_masks([None] * count)


def test_decode_part_masks_names_the_bad_entry():
    masks: list = [None] * 14
    masks[2] = {"size": [128, 128], "counts": "T3"}
    with pytest.raises(ValueError, match=r"dp_masks\[2\] \(Left Hand\)"):
        decode_part_masks(masks)


@pytest.mark.parametrize("seed", range(4))
def test_encode_decode_round_trip_random_label_maps(seed):
    rng = np.random.default_rng(seed)
    # Blocky random maps (8x8 blocks) with a random subset of parts absent.
    present = rng.choice(np.arange(15), size=rng.integers(1, 15), replace=False)
    labels = np.kron(rng.choice(present, size=(32, 32)), np.ones((8, 8), np.int64))
    labels[rng.random((256, 256)) < 0.05] = 0  # and some single-pixel holes
    encoded = encode_part_masks(labels)
    assert len(encoded) == 14
    for part, rle in enumerate(encoded, start=1):
        assert rle["size"] == [256, 256]
        assert isinstance(rle["counts"], str)
        # Independent check with pycocotools' own decoder.
        decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})
        np.testing.assert_array_equal(decoded, labels == part)
    np.testing.assert_array_equal(decode_part_masks(encoded), labels)


def test_encode_empty_parts_get_valid_empty_rles():
    labels = np.zeros((256, 256), dtype=np.uint8)
    labels[:, 128:] = 3
    encoded = encode_part_masks(labels)
    for part, rle in enumerate(encoded, start=1):
        mask = decode_rle(rle)
        assert mask.sum() == (128 * 256 if part == 3 else 0)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (np.zeros((128, 256), np.uint8), "shape"),
        (np.zeros((256, 256), np.float32), "integer dtype"),
        (np.full((256, 256), 15, np.int32), r"0\.\.14"),
        (np.full((256, 256), -1, np.int32), r"0\.\.14"),
    ],
)
def test_encode_part_masks_rejects_bad_label_maps(labels, message):
    with pytest.raises(ValueError, match=message):
        encode_part_masks(labels)


def test_labels_from_counts_equals_decode_part_masks() -> None:
    from dptrack_pipeline.formats.rle import (
        decode_part_masks,
        encode_part_masks,
        labels_from_counts,
    )

    rng = np.random.default_rng(4)
    labels = np.zeros((256, 256), dtype=np.uint8)
    for part in (1, 3, 7, 14):
        y, x = rng.integers(0, 200, 2)
        labels[y : y + 60, x : x + 50] = part  # overlapping boxes: the later part wins
    entries = encode_part_masks(labels)
    counts = [e["counts"] if e else "" for e in entries]
    np.testing.assert_array_equal(labels_from_counts(counts), decode_part_masks(entries))
    np.testing.assert_array_equal(labels_from_counts(counts), labels)
    assert not labels_from_counts([""] * 14).any()
    with pytest.raises(ValueError, match="14"):
        labels_from_counts(counts[:3])


def test_labels_from_counts_paints_overlapping_masks_like_pycocotools() -> None:
    """Masks encoded one by one by pycocotools (they may overlap, be full or empty): the fast
    decoder gives DensePose's label map (the later part wins) and the same runs as the checked
    parser."""
    import pycocotools.mask as mask_utils

    from dptrack_pipeline.formats.rle import _compressed_counts, _runs_of, labels_from_counts

    rng = np.random.default_rng(11)
    for _ in range(40):
        expected = np.zeros((256, 256), dtype=np.uint8)
        counts = []
        for part in range(14):
            if rng.random() < 0.2:
                counts.append("")
                continue
            mask = np.zeros((256, 256), dtype=np.uint8)
            for _ in range(int(rng.integers(1, 4))):
                y, x = rng.integers(0, 256, 2)
                h, w = rng.integers(1, 140, 2)
                mask[y : y + h, x : x + w] = 1
            if rng.random() < 0.05:
                mask[:] = 1
            expected[mask > 0] = part + 1
            encoded = mask_utils.encode(np.asfortranarray(mask))["counts"]
            assert _runs_of(encoded).tolist() == _compressed_counts(encoded)
            counts.append(encoded.decode())
        np.testing.assert_array_equal(labels_from_counts(counts), expected)


def test_labels_from_counts_refuses_runs_that_do_not_cover_the_grid() -> None:
    from dptrack_pipeline.formats.rle import labels_from_counts

    with pytest.raises(ValueError, match="add up to"):
        labels_from_counts(["T3", *[""] * 13])
