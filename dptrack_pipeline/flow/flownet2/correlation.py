"""FlowNet's correlation layer in plain PyTorch: a reference loop and a fast tiled-matmul form.

The public FlowNet2 computes, for feature maps ``f1, f2`` of shape ``(B, C, H, W)``,

    out[b, (p + R) * D + (o + R), y, x] = sum_c f1[b, c, y, x] * f2[b, c, y + s*p, x + s*o] / C

for ``p, o`` in ``-R..R`` with ``R = max_displacement // stride`` and ``D = 2R + 1``: the channel
index is **y-major** (``p`` is the vertical displacement), ``f2`` is **zero outside the map** (the
layer's ``pad_size = max_displacement``), kernel size 1, and the output keeps the input's ``H, W``.
FlowNetC uses ``max_displacement = 20``, ``stride = 2``: 21 x 21 = 441 channels. (The public
layer's "stride1" is 1, so every ``(y, x)`` is an output position.)

Two implementations, same result:

* :func:`correlation_reference` loops over the ``D*D`` displacements. It is the definition, written
  so it can be read against the formula above; tests compare everything else to it.
* :func:`correlation` is the fast path, exact in fp32 and built only of ``matmul`` and ``gather``,
  so it needs no custom CUDA kernel and runs on tensor cores on a GPU. Two observations make it
  cheap. (1) With ``stride = 2`` a query at ``x`` only meets keys at ``x + 2o``, of the same parity:
  splitting both maps into their four ``(y mod 2, x mod 2)`` phases turns the layer into four
  independent correlations with ``stride = 1`` and ``R = 10`` on quarter-size maps. (2) A tile of
  ``T x T`` queries of one phase meets only the ``(T + 2R)^2`` keys around it, so one matmul
  ``(T^2, C) @ (C, (T + 2R)^2)`` per tile gives every score that tile needs (with ``T = 8``, 784
  computed per 441 kept), and a fixed index table gathers the ``D*D`` band. Reading ``f2`` once per
  tile instead of once per displacement is what makes it fast; the loop reads it 441 times.

Nothing here compiles an extension; ``torch.compile`` may be applied by the caller.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

FLOWNETC_MAX_DISPLACEMENT = 20
FLOWNETC_STRIDE = 2


def _check_inputs(f1: torch.Tensor, f2: torch.Tensor, max_displacement: int, stride: int) -> int:
    if f1.ndim != 4 or f1.shape != f2.shape:
        raise ValueError(
            f"correlation needs two (B, C, H, W) tensors of one shape, got {tuple(f1.shape)} "
            f"and {tuple(f2.shape)}"
        )
    if stride < 1 or max_displacement < 0 or max_displacement % stride:
        raise ValueError(
            f"max_displacement ({max_displacement}) must be a non-negative multiple of "
            f"stride ({stride})"
        )
    return max_displacement // stride


def correlation_reference(
    f1: torch.Tensor,
    f2: torch.Tensor,
    max_displacement: int = FLOWNETC_MAX_DISPLACEMENT,
    stride: int = FLOWNETC_STRIDE,
) -> torch.Tensor:
    """The correlation by its definition: one shifted product per displacement.

    Args:
        f1, f2: ``(B, C, H, W)`` feature maps of the first and second image.
        max_displacement: largest displacement in pixels of the map, each direction.
        stride: step between displacements.

    Returns:
        ``(B, D*D, H, W)`` with ``D = 2 * max_displacement // stride + 1``, channel
        ``(p + R) * D + (o + R)`` for vertical step ``p`` and horizontal step ``o``, divided by
        ``C``; in ``f1``'s dtype.
    """
    radius = _check_inputs(f1, f2, max_displacement, stride)
    _, channels, height, width = f1.shape
    pad = max_displacement
    padded = F.pad(f2, (pad, pad, pad, pad))
    planes = []
    for p in range(-radius, radius + 1):
        for o in range(-radius, radius + 1):
            dy, dx = pad + p * stride, pad + o * stride
            shifted = padded[:, :, dy : dy + height, dx : dx + width]
            planes.append((f1 * shifted).sum(dim=1))
    return torch.stack(planes, dim=1) / channels


@functools.lru_cache(maxsize=16)
def _band_index(tile: int, radius: int) -> torch.Tensor:
    """``(T*T, D*D)`` int64: for query ``(i, j)`` of a tile, the flat index of key ``(i+p, j+o)``
    in the tile's ``(T + 2R)^2`` neighbourhood, ordered y-major over ``(p, o)``."""
    span = tile + 2 * radius
    steps = torch.arange(-radius, radius + 1)
    rows = torch.arange(tile)[:, None, None, None] + radius + steps[None, None, :, None]
    cols = torch.arange(tile)[None, :, None, None] + radius + steps[None, None, None, :]
    return (rows * span + cols).reshape(tile * tile, -1)


def correlation(
    f1: torch.Tensor,
    f2: torch.Tensor,
    max_displacement: int = FLOWNETC_MAX_DISPLACEMENT,
    stride: int = FLOWNETC_STRIDE,
    tile: int = 8,
) -> torch.Tensor:
    """The same result as :func:`correlation_reference`, by phase split and tiled matmul.

    Args:
        f1, f2: ``(B, C, H, W)`` feature maps (any float dtype; scores accumulate as matmul does,
            fp32 on CPU and in cuBLAS).
        max_displacement, stride: as in :func:`correlation_reference`.
        tile: queries per tile side (on one phase). 8 balances wasted products against launch
            count; any value >= 1 gives the same result.

    Returns:
        ``(B, D*D, H, W)`` in ``f1``'s dtype, channel order as the reference.
    """
    radius = _check_inputs(f1, f2, max_displacement, stride)
    batch, channels, height, width = f1.shape
    s, t, r = stride, tile, radius
    span = t + 2 * r
    # Pad so every phase has a whole number of tiles; the extra f2 cells are zero, as outside.
    ph = -(-height // (s * t)) * t  # rows per phase, whole tiles
    pw = -(-width // (s * t)) * t
    f1p = F.pad(f1, (0, pw * s - width, 0, ph * s - height))
    f2p = F.pad(f2, (0, pw * s - width, 0, ph * s - height))
    # (B, C, H', W') -> (B, s*s phases, C, ph, pw): phase (a, b) holds rows a::s, cols b::s.
    q = f1p.reshape(batch, channels, ph, s, pw, s).permute(0, 3, 5, 1, 2, 4)
    k = f2p.reshape(batch, channels, ph, s, pw, s).permute(0, 3, 5, 1, 2, 4)
    q = q.reshape(batch * s * s, channels, ph, pw)
    k = F.pad(k.reshape(batch * s * s, channels, ph, pw), (r, r, r, r))
    n = batch * s * s
    th, tw = ph // t, pw // t
    # Queries: (n, tiles, T*T, C).
    queries = q.reshape(n, channels, th, t, tw, t).permute(0, 2, 4, 3, 5, 1)
    queries = queries.reshape(n, th * tw, t * t, channels)
    # Keys: every tile's (T+2R)^2 neighbourhood, (n, tiles, C, span*span).
    keys = k.unfold(2, span, t).unfold(3, span, t)  # (n, C, th, tw, span, span)
    keys = keys.permute(0, 2, 3, 1, 4, 5).reshape(n, th * tw, channels, span * span)
    scores = torch.matmul(queries, keys)  # (n, tiles, T*T, span*span)
    index = _band_index(t, r).to(scores.device)
    band = torch.gather(scores, 3, index.expand(n, th * tw, t * t, index.shape[1]))
    # (n, tiles, T*T, D*D) -> (B, D*D, H', W'), undoing the tiling and the phase split.
    d2 = index.shape[1]
    band = band.reshape(batch, s, s, th, tw, t, t, d2)
    out = band.permute(0, 7, 3, 5, 1, 4, 6, 2).reshape(batch, d2, ph * s, pw * s)
    return out[:, :, :height, :width] / channels
