"""Geodesic distances on the DensePose body surface (the official evaluation assets).

The DensePose evaluation (Güler et al. 2018; ``densepose_cocoeval.py`` in facebookresearch/DensePose
and ``densepose_coco_evaluation.py`` in detectron2's DensePose project) measures how far a
predicted surface point is from the annotated one along the body surface of the SMPL template.
It needs three files that the user supplies (they are not downloadable here):

* ``SMPL_subdiv.mat`` (MATLAB v5): ``Part_ID_subdiv`` (the surface part 1..24 of each of the
  ``N = 29408`` points of a subdivided SMPL mesh, in which every vertex on a part seam is
  duplicated once per part) and ``U_subdiv``, ``V_subdiv`` (their chart coordinates in ``[0, 1]``).
* ``SMPL_SUBDIV_TRANSFORM.mat`` (MATLAB v5): ``index``, for each of the ``N`` mesh points its
  **1-based** vertex ``1..n`` of the geodesic matrix (``n = 27554``).
* ``Pdist_matrix.pkl`` (a Python-2 pickle, read with ``encoding="latin1"``): a dict whose
  ``"Pdist_matrix"`` is the condensed pairwise geodesic distance matrix over the ``n`` vertices,
  in **metres**, ``n (n - 1) / 2`` values (stored as a column). Older DensePose releases ship it
  as ``Pdist_matrix.mat`` (MATLAB v7.3, i.e. HDF5), which is read with ``h5py``.

**Condensed order.** Both official implementations read the distance between 0-based vertices
``i != j`` at ``k = a (a - 1) / 2 + b`` with ``a = max(i, j)``, ``b = min(i, j)``: the strict lower
triangle in row-major order, ``(1, 0), (2, 0), (2, 1), (3, 0), ...`` (detectron2 writes the same
index through a double reversal of SciPy's formula). This is **not** the order of
``scipy.spatial.distance.squareform`` / ``pdist`` (the strict upper triangle in row-major order,
``k = n i - i (i + 1) / 2 + j - i - 1`` for ``i < j``); the two agree only for ``n <= 3``.
:func:`condensed_index` implements the official order.

**Point to vertex.** A surface point ``(I, U, V)`` is mapped to the mesh point of part ``I`` that is
nearest in ``(U, V)`` (Euclidean; ties go to the lowest mesh index, as ``argmin`` in the official
code), then through ``index`` to a geodesic vertex. Points with ``I`` outside ``1..24`` (the
background ``0``) have no vertex. :func:`geodesic_distances` gives ``0`` for equal vertices,
``inf`` where the prediction has no vertex (a point predicted as background is infinitely far)
and ``nan`` where the ground truth has none (the official code drops such points, so they are
not scored).

**Files without SciPy.** Reading the two MATLAB v5 files needs ``scipy.io.loadmat``, imported
only when an official file is read. :func:`convert_assets` (run once where SciPy is installed)
writes everything into one ``.npz`` (:data:`ASSETS_NPZ`, arrays ``part_id``, ``u``, ``v``,
``index`` (1-based, as in the official file) and ``pdist`` (float32 metres, in the official
order)), which :meth:`GeodesicAssets.load` reads with numpy alone. In memory the full matrix
takes about 1.5 GB as float32 (3 GB as float64).
"""

from __future__ import annotations

import math
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dptrack_pipeline.shards.atomic import atomic_write

NUM_SURFACE_PARTS = 24
"""DensePose surface parts ``1..24`` (``0`` is the background)."""

SUBDIV_FILE = "SMPL_subdiv.mat"
TRANSFORM_FILE = "SMPL_SUBDIV_TRANSFORM.mat"
PDIST_PICKLE = "Pdist_matrix.pkl"
PDIST_MAT = "Pdist_matrix.mat"
ASSETS_NPZ = "densepose_geodesic.npz"
"""Name of the converted single-file assets (see :func:`convert_assets`)."""

_CHUNK = 1024
"""Points per block when searching the nearest mesh point (a block x part distance table)."""


def condensed_index(i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Position of the distance between 0-based vertices ``i != j`` in the official matrix.

    ``k = a (a - 1) / 2 + b`` with ``a = max(i, j)`` and ``b = min(i, j)`` (strict lower triangle,
    row-major; see the module docstring). Symmetric in ``i, j``; int64.

    Example:
        >>> condensed_index(np.array([1, 2, 2, 3]), np.array([0, 0, 1, 0])).tolist()
        [0, 1, 2, 3]
    """
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    high = np.maximum(i, j)
    low = np.minimum(i, j)
    return high * (high - 1) // 2 + low


def _num_vertices(condensed_length: int) -> int:
    """``n`` with ``n (n - 1) / 2 == condensed_length``; ValueError when there is none."""
    n = (1 + math.isqrt(1 + 8 * condensed_length)) // 2
    if n * (n - 1) // 2 != condensed_length:
        raise ValueError(
            f"a condensed distance matrix has n (n - 1) / 2 values; {condensed_length} is not such "
            "a number"
        )
    return n


@dataclass(frozen=True, eq=False)
class GeodesicAssets:
    """The DensePose evaluation mesh and its geodesic distances.

    Attributes:
        part_id: ``(N,)`` int64, surface part ``1..24`` of each subdivided-mesh point.
        uv: ``(N, 2)`` float64, its chart coordinates ``(U, V)``.
        vertex: ``(N,)`` int64, its **0-based** vertex ``0..n-1`` of the geodesic matrix (the
            official ``index`` minus one).
        pdist: ``(n (n - 1) / 2,)`` float, condensed geodesic distances in metres, official order
            (:func:`condensed_index`).
        num_vertices: ``n``.
    """

    part_id: np.ndarray
    uv: np.ndarray
    vertex: np.ndarray
    pdist: np.ndarray
    num_vertices: int
    _part_points: tuple[np.ndarray, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Mesh points of each part, ascending (so ties in the nearest search go to the lowest).
        parts = tuple(np.flatnonzero(self.part_id == part) for part in range(NUM_SURFACE_PARTS + 1))
        object.__setattr__(self, "_part_points", parts)

    @classmethod
    def from_arrays(
        cls,
        part_id: np.ndarray,
        u: np.ndarray,
        v: np.ndarray,
        index: np.ndarray,
        pdist: np.ndarray,
    ) -> GeodesicAssets:
        """Build and check the assets from arrays laid out as in the official files.

        Args:
            part_id, u, v: ``N`` values each (any shape, e.g. MATLAB's ``(1, N)``): part
                ``1..24`` and chart coordinates of the subdivided-mesh points.
            index: ``N`` **1-based** geodesic vertices (the official ``SMPL_SUBDIV_TRANSFORM``).
            pdist: the condensed distance matrix, ``n (n - 1) / 2`` values (any shape, e.g. the
                official ``(M, 1)`` column), metres; its dtype is kept.

        Raises:
            ValueError: on inconsistent sizes, parts outside ``1..24``, vertices outside ``1..n``.
        """
        part_id = np.asarray(part_id).reshape(-1).astype(np.int64)
        u = np.asarray(u, dtype=np.float64).reshape(-1)
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        index = np.asarray(index).reshape(-1).astype(np.int64)
        pdist = np.asarray(pdist).reshape(-1)
        if not (part_id.shape[0] == u.shape[0] == v.shape[0] == index.shape[0]):
            raise ValueError(
                "part_id, u, v and index must have one value per mesh point, got "
                f"{part_id.shape[0]}, {u.shape[0]}, {v.shape[0]} and {index.shape[0]}"
            )
        if part_id.size and (part_id.min() < 1 or part_id.max() > NUM_SURFACE_PARTS):
            raise ValueError(f"part_id must be in 1..{NUM_SURFACE_PARTS}")
        n = _num_vertices(pdist.shape[0])
        if index.size and (index.min() < 1 or index.max() > n):
            raise ValueError(
                f"index must hold 1-based vertices 1..{n} (the matrix has {n} vertices), got "
                f"{index.min()}..{index.max()}"
            )
        return cls(part_id, np.stack([u, v], axis=1), index - 1, pdist, n)

    @classmethod
    def load(cls, path: str | os.PathLike) -> GeodesicAssets:
        """Read the assets from a converted ``.npz`` or from a folder.

        Args:
            path: a ``.npz`` written by :func:`convert_assets`, or a folder holding either
                :data:`ASSETS_NPZ` or the official files ``SMPL_subdiv.mat``,
                ``SMPL_SUBDIV_TRANSFORM.mat`` and ``Pdist_matrix.pkl`` (or ``Pdist_matrix.mat``).
                Reading the official ``.mat`` files needs SciPy; the pickle is read with a loader
                that accepts numpy arrays only.

        Raises:
            FileNotFoundError: when the files are missing.
            ImportError: when official ``.mat`` files must be read and SciPy is not installed.
            ValueError: on malformed content.
        """
        path = Path(path)
        if path.is_file():
            return cls._load_npz(path)
        if (path / ASSETS_NPZ).is_file():
            return cls._load_npz(path / ASSETS_NPZ)
        return cls._load_official(path)

    @classmethod
    def _load_npz(cls, path: Path) -> GeodesicAssets:
        with np.load(path, allow_pickle=False) as data:
            missing = {"part_id", "u", "v", "index", "pdist"} - set(data.files)
            if missing:
                raise ValueError(f"{path} lacks the arrays {sorted(missing)}")
            return cls.from_arrays(
                data["part_id"], data["u"], data["v"], data["index"], data["pdist"]
            )

    @classmethod
    def _load_official(cls, folder: Path) -> GeodesicAssets:
        needed = [folder / SUBDIV_FILE, folder / TRANSFORM_FILE]
        pdist_path = folder / PDIST_PICKLE
        if not pdist_path.is_file():
            pdist_path = folder / PDIST_MAT
        missing = [p.name for p in [*needed, pdist_path] if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"{folder} holds neither {ASSETS_NPZ} nor the DensePose evaluation files "
                f"{SUBDIV_FILE}, {TRANSFORM_FILE} and {PDIST_PICKLE} (or {PDIST_MAT}); missing: "
                f"{', '.join(missing)}"
            )
        subdiv = _loadmat(needed[0])
        transform = _loadmat(needed[1])
        for name, content, keys in (
            (SUBDIV_FILE, subdiv, ("Part_ID_subdiv", "U_subdiv", "V_subdiv")),
            (TRANSFORM_FILE, transform, ("index",)),
        ):
            absent = [key for key in keys if key not in content]
            if absent:
                raise ValueError(f"{folder / name} lacks the variables {absent}")
        pdist = _read_pdist(pdist_path)
        return cls.from_arrays(
            subdiv["Part_ID_subdiv"],
            subdiv["U_subdiv"],
            subdiv["V_subdiv"],
            transform["index"],
            pdist,
        )

    def save_npz(self, path: str | os.PathLike, *, dtype: type = np.float32) -> None:
        """Write the assets as one uncompressed ``.npz`` (``pdist`` cast to ``dtype``); the file
        is written under a temporary name and renamed."""
        path = Path(path)
        with atomic_write(str(path)) as tmp, open(tmp, "wb") as f:
            np.savez(
                f,
                part_id=self.part_id.astype(np.int16),
                u=self.uv[:, 0].astype(np.float32),
                v=self.uv[:, 1].astype(np.float32),
                index=(self.vertex + 1).astype(np.int32),
                pdist=self.pdist.astype(dtype, copy=False),
            )


def convert_assets(folder: str | os.PathLike, out_npz: str | os.PathLike) -> GeodesicAssets:
    """Convert the official evaluation files of ``folder`` into one ``.npz`` (needs SciPy once).

    ``U``, ``V`` are stored as float32 and the distances as float32 metres (a relative rounding
    of 6e-8, far below a millimetre), so later runs need numpy only.

    Returns:
        The assets as read from the official files.
    """
    assets = GeodesicAssets._load_official(Path(folder))
    assets.save_npz(out_npz)
    return assets


def _loadmat(path: Path) -> dict:
    try:
        from scipy.io import loadmat
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"reading {path} (a MATLAB v5 file) needs SciPy, which is not installed; install it "
            "(pip install scipy), or convert the files once with "
            "dptrack_pipeline.train.geodesic.convert_assets where SciPy is available and load "
            f"the resulting {ASSETS_NPZ}"
        ) from error
    return loadmat(str(path))


class _NumpyUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds numpy arrays, dtypes and scalars (the content of
    ``Pdist_matrix.pkl``), so a tampered file cannot run arbitrary code. ``_codecs.encode`` is how
    protocol-2 pickles written by Python 3 store raw bytes."""

    _NUMPY = {"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer", "frombuffer"}

    def find_class(self, module: str, name: str) -> object:
        allowed = (module.split(".")[0] == "numpy" and name in self._NUMPY) or (
            module == "_codecs" and name == "encode"
        )
        if allowed:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a distance pickle")


def _read_pdist(path: Path) -> np.ndarray:
    """The condensed matrix from ``Pdist_matrix.pkl`` (pickle) or ``Pdist_matrix.mat`` (v7.3)."""
    if path.suffix == ".pkl":
        with open(path, "rb") as handle:
            content = _NumpyUnpickler(handle, encoding="latin1").load()
        if not isinstance(content, dict) or "Pdist_matrix" not in content:
            raise ValueError(f"{path} is not a dict with a 'Pdist_matrix' entry")
        return np.asarray(content["Pdist_matrix"]).reshape(-1)
    import h5py

    with h5py.File(path, "r") as handle:
        if "Pdist_matrix" not in handle:
            raise ValueError(f"{path} has no 'Pdist_matrix' dataset")
        return np.asarray(handle["Pdist_matrix"]).reshape(-1)


def closest_vertices(
    assets: GeodesicAssets, I: np.ndarray, U: np.ndarray, V: np.ndarray
) -> np.ndarray:
    """Geodesic vertex of each surface point ``(I, U, V)``.

    Args:
        assets: the evaluation mesh.
        I: ``(...)`` integer surface part, ``1..24`` on the body; any other value (the background
            ``0``, padding ``-1``) has no vertex.
        U, V: ``(...)`` chart coordinates in ``[0, 1]``, same shape as ``I``.

    Returns:
        ``(...)`` int64, the 0-based vertex ``0..n-1`` of the mesh point of part ``I`` nearest to
        ``(U, V)`` (see the module docstring), ``-1`` where there is none.
    """
    I = np.asarray(I)
    U = np.asarray(U, dtype=np.float64)
    V = np.asarray(V, dtype=np.float64)
    if not (I.shape == U.shape == V.shape):
        raise ValueError(f"I, U and V must have one shape, got {I.shape}, {U.shape}, {V.shape}")
    parts = I.reshape(-1).astype(np.int64)
    query = np.stack([U.reshape(-1), V.reshape(-1)], axis=1)
    out = np.full(parts.shape, -1, dtype=np.int64)
    for part in range(1, NUM_SURFACE_PARTS + 1):
        points = np.flatnonzero(parts == part)
        mesh_points = assets._part_points[part]
        if points.size == 0 or mesh_points.size == 0:
            continue
        mesh_uv = assets.uv[mesh_points]
        for start in range(0, points.size, _CHUNK):
            block = points[start : start + _CHUNK]
            squared = ((query[block, None, :] - mesh_uv[None, :, :]) ** 2).sum(axis=-1)
            out[block] = assets.vertex[mesh_points[np.argmin(squared, axis=1)]]
    return out.reshape(I.shape)


def geodesic_distances(
    assets: GeodesicAssets, gt_vertices: np.ndarray, pred_vertices: np.ndarray
) -> np.ndarray:
    """Geodesic distances between ground-truth and predicted vertices, in metres.

    Args:
        assets: the evaluation mesh and its distance matrix.
        gt_vertices, pred_vertices: ``(...)`` 0-based vertices (:func:`closest_vertices`), ``-1``
            for none; same shape.

    Returns:
        ``(...)`` float64 metres: ``0`` for equal vertices, the matrix entry otherwise, ``inf``
        where the prediction has no vertex and ``nan`` where the ground truth has none.
    """
    gt = np.asarray(gt_vertices, dtype=np.int64)
    pred = np.asarray(pred_vertices, dtype=np.int64)
    if gt.shape != pred.shape:
        raise ValueError(f"gt_vertices {gt.shape} and pred_vertices {pred.shape} differ in shape")
    n = assets.num_vertices
    if (gt >= n).any() or (pred >= n).any():
        raise ValueError(f"vertices must be below {n}, the size of the distance matrix")
    out = np.zeros(gt.shape, dtype=np.float64)
    lookup = (gt >= 0) & (pred >= 0) & (gt != pred)
    out[lookup] = assets.pdist[condensed_index(gt[lookup], pred[lookup])]
    out[pred < 0] = np.inf
    out[gt < 0] = np.nan
    return out


def surface_distances_cm(
    assets: GeodesicAssets,
    gt_I: np.ndarray,
    gt_U: np.ndarray,
    gt_V: np.ndarray,
    pred_I: np.ndarray,
    pred_U: np.ndarray,
    pred_V: np.ndarray,
) -> np.ndarray:
    """Geodesic distances between ground-truth and predicted surface points, in centimetres.

    :func:`closest_vertices` on both, then :func:`geodesic_distances` times 100: ``inf`` where
    the prediction is the background, ``nan`` where the ground truth is.
    """
    gt_vertices = closest_vertices(assets, gt_I, gt_U, gt_V)
    pred_vertices = closest_vertices(assets, pred_I, pred_U, pred_V)
    return 100.0 * geodesic_distances(assets, gt_vertices, pred_vertices)
