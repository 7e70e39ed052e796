"""DensePose part masks: COCO run-length encodings on the 256x256 box grid.

A DensePose annotation stores its 14 body-part masks as ``dp_masks``: a list of 14 COCO RLE dicts
``{"counts": str, "size": [256, 256]}``, one per part in :data:`MASK_PART_NAMES` order, each on a
256x256 grid spanning the person box (grid cell ``(i, j)`` covers box-relative
``[j, j+1) x [i, i+1)`` in 256-units, see :mod:`dptrack_pipeline.structures`). In real files an
absent part is written as ``[]`` or ``{}``; here ``None`` means the same.

Encoding and decoding are done by :mod:`pycocotools.mask`, except the shard reader's fast path
:func:`labels_from_counts` (its docstring says why). One more thing is hand-written, on purpose:
:func:`_compressed_counts`, a parser of the COCO counts string used only to *check* an RLE before
pycocotools decodes it. pycocotools exposes no such parser, and its ``decode`` does not check that
the run lengths add up to ``h * w``: an RLE that is too short comes back with uninitialised memory
in its tail (measured with pycocotools 2.0.11: counts ``"T3"`` at size 256x256 decoded to values
0..255, different on every call). Checking the total first turns that into a ``ValueError``.

Label maps follow DensePose's own loader (``GetDensePoseMask`` in detectron's DensePose code):
``labels[mask_k > 0] = k`` for ``k = 1..14`` in order, so a later part overwrites an earlier one
where two masks overlap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pycocotools.mask as mask_utils

from dptrack_pipeline.structures import DP_GRID, NUM_MASK_PARTS, NUM_SURFACE_PARTS

MASK_PART_NAMES: tuple[str, ...] = (
    "Torso",
    "Right Hand",
    "Left Hand",
    "Left Foot",
    "Right Foot",
    "Upper Leg Right",
    "Upper Leg Left",
    "Lower Leg Right",
    "Lower Leg Left",
    "Upper Arm Left",
    "Upper Arm Right",
    "Lower Arm Left",
    "Lower Arm Right",
    "Head",
)
"""Names of the 14 mask parts; label ``k`` (1..14) is ``MASK_PART_NAMES[k - 1]``."""

SURFACE_TO_MASK_PART: np.ndarray = np.array(
    # I: 0  1  2  3  4  5  6  7  8  9 10 11 12 13 14  15  16  17  18  19  20  21  22  23  24
    [0, 1, 1, 2, 3, 4, 5, 6, 7, 6, 7, 8, 9, 8, 9, 10, 11, 10, 11, 12, 13, 12, 13, 14, 14],
    dtype=np.uint8,
)
"""``(25,)`` uint8: mask part (1..14) of each surface patch ``I`` (1..24); index 0 maps to 0.

Use as ``SURFACE_TO_MASK_PART[dp_I.astype(int)]``. From the DensePose data format: 1, 2 = Torso,
3 = Right Hand, 4 = Left Hand, 5 = Left Foot, 6 = Right Foot, 7, 9 = Upper Leg Right,
8, 10 = Upper Leg Left, 11, 13 = Lower Leg Right, 12, 14 = Lower Leg Left, 15, 17 = Upper Arm Left,
16, 18 = Upper Arm Right, 19, 21 = Lower Arm Left, 20, 22 = Lower Arm Right, 23, 24 = Head.
"""
SURFACE_TO_MASK_PART.setflags(write=False)

assert len(MASK_PART_NAMES) == NUM_MASK_PARTS
assert SURFACE_TO_MASK_PART.shape == (NUM_SURFACE_PARTS + 1,)

MASK_SIZE: tuple[int, int] = (DP_GRID, DP_GRID)


def is_empty_part(entry: object) -> bool:
    """Whether a ``dp_masks`` entry stands for an absent part (``None``, ``{}`` or ``[]``)."""
    return entry is None or (isinstance(entry, (dict, list, tuple)) and len(entry) == 0)


def _compressed_counts(counts: bytes) -> list[int]:
    """Run lengths of a COCO compressed counts string (the inverse of pycocotools' ``rleToString``).

    Each value is written in 5-bit groups, least significant first, as ``chr(48 + group)``; bit
    0x20 of a group says another group follows and bit 0x10 of the last group is the sign. From the
    fourth value on, the string stores the difference to the value two places before.

    Raises:
        ValueError: on a character outside ``'0'..'o'`` or a string that ends mid-value.
    """
    values: list[int] = []
    pos = 0
    while pos < len(counts):
        value = 0
        shift = 0
        more = True
        while more:
            if pos >= len(counts):
                raise ValueError("RLE counts string ends in the middle of a value")
            group = counts[pos] - 48
            if not 0 <= group < 64:
                raise ValueError(f"RLE counts has an invalid character {chr(counts[pos])!r}")
            value |= (group & 0x1F) << shift
            more = bool(group & 0x20)
            pos += 1
            shift += 5
            if not more and group & 0x10:
                value -= 1 << shift
        if len(values) > 2:
            value += values[-2]
        values.append(value)
    return values


def _check_runs(runs: Sequence[int], height: int, width: int) -> None:
    if any(run < 0 for run in runs):
        raise ValueError("RLE counts contain a negative run length")
    total = sum(runs)
    if total != height * width:
        raise ValueError(
            f"RLE run lengths add up to {total}, expected {height * width} for size "
            f"[{height}, {width}]"
        )


def to_compressed_rle(rle: dict, size: tuple[int, int] = MASK_SIZE) -> dict:
    """Check an RLE and return it as ``{"size": [h, w], "counts": str}`` (compressed, utf-8).

    Accepts compressed counts (``str`` or ``bytes``) and uncompressed counts (a list of run
    lengths, as in COCO ``iscrowd`` segmentations).

    Raises:
        ValueError: if ``rle`` is not a dict with ``size`` and ``counts``, ``size`` differs from
            ``size``, or the counts are malformed or do not cover exactly ``h * w`` pixels.
    """
    if not isinstance(rle, dict) or "counts" not in rle or "size" not in rle:
        raise ValueError(f"RLE must be a dict with 'counts' and 'size', got {_short(rle)}")
    rle_size = rle["size"]
    if (
        not isinstance(rle_size, (list, tuple))
        or len(rle_size) != 2
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in rle_size)
    ):
        raise ValueError(f"RLE size must be [height, width] integers, got {rle_size!r}")
    height, width = int(rle_size[0]), int(rle_size[1])
    if (height, width) != (int(size[0]), int(size[1])):
        raise ValueError(f"RLE size is [{height}, {width}], expected [{size[0]}, {size[1]}]")
    counts = rle["counts"]
    if isinstance(counts, str):
        try:
            counts = counts.encode("ascii")
        except UnicodeEncodeError as err:
            raise ValueError("RLE counts string is not ASCII") from err
    if isinstance(counts, bytes):
        _check_runs(_compressed_counts(counts), height, width)
        return {"size": [height, width], "counts": counts.decode("ascii")}
    if isinstance(counts, (list, tuple)):
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in counts):
            raise ValueError("uncompressed RLE counts must be a list of integers")
        _check_runs([int(v) for v in counts], height, width)
        compressed = mask_utils.frPyObjects(
            {"size": [height, width], "counts": [int(v) for v in counts]}, height, width
        )
        return {"size": [height, width], "counts": compressed["counts"].decode("ascii")}
    raise ValueError(
        f"RLE counts must be str, bytes or a list of ints, got {type(counts).__name__}"
    )


def decode_rle(rle: dict, size: tuple[int, int] = MASK_SIZE) -> np.ndarray:
    """Decode one COCO RLE to a binary mask.

    Args:
        rle: ``{"size": [h, w], "counts": ...}`` with compressed counts (``str`` or ``bytes``) or
            uncompressed counts (list of run lengths, column-major as in COCO).
        size: the ``(h, w)`` the RLE must have.

    Returns:
        ``(h, w)`` uint8 array of 0/1, C-contiguous, row = y.

    Raises:
        ValueError: on a malformed RLE or a size other than ``size``.
    """
    compressed = to_compressed_rle(rle, size)
    mask = mask_utils.decode({"size": compressed["size"], "counts": compressed["counts"].encode()})
    return np.ascontiguousarray(mask, dtype=np.uint8)


def labels_from_counts(counts: Sequence[str]) -> np.ndarray:
    """The part label map of 14 compressed 256x256 RLE ``counts`` strings, for trusted input.

    The fast path for reading shards, whose masks were validated when they were written. It is
    hand-written (numpy) rather than a ``pycocotools.mask.decode``: that call expands every
    present part into a full 256x256 mask, and picking the labels out of 14 masks then costs more
    than the decoding. Here all 14 strings are parsed in one pass (:func:`_runs_of_many`), the
    run boundaries of all parts cut the grid into segments, each segment takes the highest part
    that covers it, and one ``np.repeat`` paints the map: 0.12 ms a row against 0.5 ms painting
    part by part and 1.6 ms with pycocotools (the rows of ``benchmarks/bench_reader.py``). An
    empty string is an absent part. Same result as :func:`decode_part_masks` (tested against it
    and pycocotools on overlapping masks): ``(256, 256)`` uint8, 0 = background, the later part
    wins.

    Raises:
        ValueError: if there are not exactly 14 entries, or a string's runs do not add up to
            256 x 256.
    """
    if len(counts) != NUM_MASK_PARTS:
        raise ValueError(f"expected {NUM_MASK_PARTS} RLE counts, got {len(counts)}")
    cells = MASK_SIZE[0] * MASK_SIZE[1]
    present = [
        (part, string.encode() if isinstance(string, str) else bytes(string))
        for part, string in enumerate(counts)
        if string
    ]
    if not present:
        return np.zeros(MASK_SIZE, dtype=np.uint8)
    runs, per_string = _runs_of_many([string for _, string in present])
    starts = np.concatenate(([0], np.cumsum(per_string)[:-1]))
    string_of_run = np.repeat(np.arange(len(present)), per_string)
    if (runs < 0).any():
        raise ValueError("RLE run lengths must not be negative")
    # Where each run ends, counted from its own string's start (column-major cells).
    total = np.cumsum(runs)
    before = np.concatenate(([0], total[starts[1:] - 1]))
    ends = total - before[string_of_run]
    sums = ends[starts + per_string - 1]
    if (sums != cells).any():
        raise ValueError(
            f"RLE run lengths add up to {int(sums[sums != cells][0])}, expected {cells}"
        )
    # All parts' run boundaries cut the grid into segments (some empty); each part's foreground
    # runs (the odd ones: runs alternate background / part, from background) cover whole
    # segments, marked +1 / -1 at their ends and summed along the segments; a segment takes the
    # highest part that covers it.
    foreground = (np.arange(runs.size) - starts[string_of_run]) % 2 == 1
    bounds = np.sort(np.concatenate(([0], ends)))
    first = np.searchsorted(bounds, (ends - runs)[foreground])
    after = np.searchsorted(bounds, ends[foreground])
    owner = string_of_run[foreground]
    marks = np.zeros((len(present), bounds.size), dtype=np.int32)
    np.add.at(marks, (owner, first), 1)
    np.add.at(marks, (owner, after), -1)
    covered = np.cumsum(marks[:, :-1], axis=1) > 0
    label = np.array([part + 1 for part, _ in present], dtype=np.uint8)[:, None]
    painted = np.where(covered, label, np.uint8(0)).max(axis=0)
    flat = np.repeat(painted, np.diff(bounds))
    return np.ascontiguousarray(flat.reshape(MASK_SIZE[1], MASK_SIZE[0]).T)


def _runs_of(counts: bytes) -> np.ndarray:
    """:func:`_compressed_counts` vectorised, for one trusted string: ``(n,)`` int64 run lengths."""
    return _runs_of_many([counts])[0]


def _runs_of_many(strings: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_compressed_counts` of several trusted non-empty strings at once, vectorised.

    Returns:
        ``(runs, per_string)``: all run lengths (int64), string after string, and how many each
        string has.

    Raises:
        ValueError: if a string ends inside a value (its last 5-bit group has the "more" bit).
    """
    lengths = np.array([len(s) for s in strings])
    groups = np.frombuffer(b"".join(strings), dtype=np.uint8).astype(np.int64) - 48
    last = (groups & 0x20) == 0  # the last 5-bit group of each value
    if not last[np.cumsum(lengths) - 1].all():
        raise ValueError("an RLE counts string ends inside a value")
    value_of = np.concatenate(([0], np.cumsum(last)[:-1]))
    first = np.flatnonzero(np.concatenate(([True], last[:-1])))
    position = np.arange(groups.size) - first[value_of]
    values = np.add.reduceat((groups & 0x1F) << (5 * position), first)
    ends = np.flatnonzero(last)
    negative = (groups[ends] & 0x10) != 0
    values[negative] -= np.int64(1) << (5 * (position[ends[negative]] + 1))
    per_string = np.add.reduceat(last, np.concatenate(([0], np.cumsum(lengths)[:-1])))
    per_string = per_string.astype(np.int64)
    # From the fourth value of a string on, each is stored as the difference to the decoded
    # value two places before: a cumulative sum along each string's chain of odd (from the
    # second value) and of even (from the third) values; the first value stands alone.
    string = np.repeat(np.arange(len(strings)), per_string)
    j = np.arange(values.size) - np.repeat(np.cumsum(per_string) - per_string, per_string)
    chain = string * 3 + np.where(j == 0, 0, 2 - j % 2)
    order = np.lexsort((j, chain))
    summed = np.cumsum(values[order])
    chained = chain[order]
    head = np.flatnonzero(np.concatenate(([True], chained[1:] != chained[:-1])))
    offset = np.concatenate(([0], summed[head[1:] - 1]))
    decoded = np.empty_like(values)
    decoded[order] = summed - np.repeat(offset, np.diff(np.concatenate((head, [summed.size]))))
    return decoded, per_string


def decode_part_masks(dp_masks: Sequence[dict | None]) -> np.ndarray:
    """Decode the 14 part masks of one annotation into a part label map.

    Args:
        dp_masks: 14 entries in :data:`MASK_PART_NAMES` order, each an RLE on the 256x256 box grid
            or an empty entry (``None``, ``{}``, ``[]``) for an absent part.

    Returns:
        ``(256, 256)`` uint8 label map on the box grid: 0 = background, ``k`` = part ``k`` (1..14).
        Where masks overlap the later part wins (DensePose's own loader does the same).

    Raises:
        ValueError: if there are not exactly 14 entries or an entry is not a valid 256x256 RLE.
    """
    if isinstance(dp_masks, (str, bytes, dict)) or len(dp_masks) != NUM_MASK_PARTS:
        count = len(dp_masks) if isinstance(dp_masks, (list, tuple)) else type(dp_masks).__name__
        raise ValueError(f"dp_masks must have {NUM_MASK_PARTS} entries, got {count}")
    labels = np.zeros(MASK_SIZE, dtype=np.uint8)
    for part, entry in enumerate(dp_masks, start=1):
        if is_empty_part(entry):
            continue
        try:
            mask = decode_rle(entry)
        except ValueError as err:
            raise ValueError(f"dp_masks[{part - 1}] ({MASK_PART_NAMES[part - 1]}): {err}") from err
        labels[mask > 0] = part
    return labels


def encode_part_masks(labels: np.ndarray) -> tuple[dict, ...]:
    """Encode a part label map as 14 RLEs (the inverse of :func:`decode_part_masks`).

    Args:
        labels: ``(256, 256)`` integer label map, 0 = background, 1..14 = part.

    Returns:
        14 dicts ``{"size": [256, 256], "counts": str}`` in :data:`MASK_PART_NAMES` order; an absent
        part gets the valid RLE of an empty mask (not ``[]``).

    Raises:
        ValueError: on a wrong shape, a non-integer dtype or labels outside 0..14.
    """
    labels = np.asarray(labels)
    if labels.shape != MASK_SIZE:
        raise ValueError(f"labels must have shape {MASK_SIZE}, got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must have an integer dtype, got {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() > NUM_MASK_PARTS):
        raise ValueError(
            f"labels must lie in 0..{NUM_MASK_PARTS}, got {labels.min()}..{labels.max()}"
        )
    encoded = []
    for part in range(1, NUM_MASK_PARTS + 1):
        rle = mask_utils.encode(np.asfortranarray(labels == part, dtype=np.uint8))
        encoded.append({"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode()})
    return tuple(encoded)


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
