"""Which configurations does the FlowNet2 benchmark sweep, with which defaults?

Sizes are input frame sizes ``W x H`` in pixels; the estimator resizes them to the next
multiples of 64 (the network size ``W' x H'``, as the public port runs its network): 1024x448
stays, 1000x500 becomes 1024x512, 1280x720 becomes 1280x768. Labels are written ``"WxH"``,
width first, while the network itself takes ``(H', W')``: :func:`network_label` and
:func:`configurations` do the conversion in one place.

Defaults are chosen for one GPU run of about 8 minutes: three sizes, batches 1/4/16, fp32 and
bf16, 3 warm-up and 10 timed iterations, an 8192 bf16 matmul. ``smoke`` is a check of the
script on a CPU, not a measurement: 60x40 frames (network 64x64, the smallest; bf16
convolutions on a CPU without bf16 instructions are ~50x slower than fp32, ~4 s a pass at any
size), batches 1 and 2, no warm-up, 1 iteration, a 1024 matmul and Sintel pairs cropped to
64x64. Explicit options win over both.

The settings are a plain dict because they are written, as they are, into the results JSON.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from dptrack_pipeline.flow.flownet2.inference import network_size

DEFAULT_SIZES = ("1024x448", "1000x500", "1280x720")
DEFAULT_BATCHES = (1, 4, 16)
PRECISIONS = ("fp32", "bf16")
SMOKE_SIZES = ("60x40",)  # resized to the smallest network size, 64x64 (bf16 CPU convs are slow)
SMOKE_BATCHES = (1, 2)
SMOKE_SINTEL_CROP = "64x64"
DEFAULT_MAX_SECONDS = 420.0


def parse_size(text: str) -> tuple[int, int]:
    """``"WxH"`` -> ``(W, H)`` in pixels, both >= 1 (an ``argparse`` type).

    Raises:
        argparse.ArgumentTypeError: not two positive integers joined by ``x``.
    """
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"size must be WxH (e.g. 1280x720), got {text!r}"
        ) from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return width, height


def size_label(width: int, height: int) -> str:
    """``(W, H)`` -> ``"WxH"``."""
    return f"{width}x{height}"


def network_label(width: int, height: int) -> str:
    """The network size (multiples of 64) of a ``width x height`` input, as ``"W'xH'"``."""
    net_h, net_w = network_size(height, width)
    return size_label(net_w, net_h)


def default_sintel(repo: Path) -> Path:
    """``$DPTRACK_SHARED_DATA/flow/sintel``, else ``../shared/data/flow/sintel`` beside ``repo``."""
    if os.environ.get("DPTRACK_SHARED_DATA"):
        return Path(os.environ["DPTRACK_SHARED_DATA"]) / "flow" / "sintel"
    return repo.parent / "shared" / "data" / "flow" / "sintel"


def resolve_settings(
    device_type: str,
    *,
    sintel: Path,
    smoke: bool = False,
    sizes: Sequence[tuple[int, int]] | None = None,
    batches: Sequence[int] | None = None,
    precisions: Sequence[str] | None = None,
    warmup: int | None = None,
    iters: int | None = None,
    matmul_size: int | None = None,
    sintel_crop: tuple[int, int] | None = None,
    max_seconds: float = DEFAULT_MAX_SECONDS,
) -> dict[str, Any]:
    """The run's settings: the defaults (normal or ``smoke``) with the given values winning.

    Args:
        device_type: ``"cuda"`` or ``"cpu"`` (the matmul size and counts depend on it).
        sintel: the folder holding ``alley_1``, ``cave_2`` and ``market_5``.
        sizes: input sizes ``(W, H)``; the other arguments are the command-line options.

    Raises:
        ValueError: a batch below 1, a negative warm-up or fewer than one iteration.
    """
    sizes = sizes or [parse_size(s) for s in (SMOKE_SIZES if smoke else DEFAULT_SIZES)]
    batches = list(batches or (SMOKE_BATCHES if smoke else DEFAULT_BATCHES))
    if any(b < 1 for b in batches):
        raise ValueError(f"--batches must be >= 1, got {batches}")
    warmup = warmup if warmup is not None else (0 if smoke else 3)
    iters = iters if iters is not None else (1 if smoke else 10)
    if warmup < 0 or iters < 1:
        raise ValueError(f"need --warmup >= 0 and --iters >= 1, got {warmup} and {iters}")
    matmul_size = matmul_size or (1024 if smoke or device_type == "cpu" else 8192)
    sintel_crop = sintel_crop or (parse_size(SMOKE_SINTEL_CROP) if smoke else None)
    on_cuda = device_type == "cuda"
    return {
        "sizes": [size_label(*s) for s in sizes],
        "network_sizes": [network_label(*s) for s in sizes],
        "batches": batches,
        "precisions": list(precisions or PRECISIONS),
        "warmup": warmup,
        "iters": iters,
        "matmul_size": matmul_size,
        # One 8192^3 product takes ~1.5 ms on an H100: more of them for a stable rate.
        "matmul_warmup": max(warmup, 5) if on_cuda else warmup,
        "matmul_iters": max(iters, 50) if on_cuda else iters,
        "sintel": str(sintel),
        "sintel_crop": sintel_crop and size_label(*sintel_crop),
        "smoke": smoke,
        "max_seconds": max_seconds,
        "fit": "resize",
        "correlation": "matmul",
        "channels_last": on_cuda,
    }


def configurations(settings: dict[str, Any]) -> Iterator[tuple[dict[str, Any], tuple[int, int]]]:
    """Each input size x precision x batch of ``settings``, in that nesting order.

    Yields:
        A new result row ``{"size", "network_size", "precision", "batch"}`` and the network
        size ``(H', W')`` in pixels.
    """
    for label, net_label in zip(settings["sizes"], settings["network_sizes"], strict=True):
        net_w, net_h = parse_size(net_label)
        for precision in settings["precisions"]:
            for batch in settings["batches"]:
                row = {
                    "size": label,
                    "network_size": net_label,
                    "precision": precision,
                    "batch": batch,
                }
                yield row, (net_h, net_w)
