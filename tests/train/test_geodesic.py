"""DensePose geodesic assets: the official condensed order, nearest vertices, distances, files.

The mesh here is tiny and hand-made: 6 geodesic vertices, 8 subdivided-mesh points on parts 1
and 2 (vertex 2 lies on the seam, so it appears once per part, as in the official
``SMPL_subdiv``). The distance between vertices ``a > b`` is ``(10 a + b) / 100`` m, so every
entry of the matrix is distinct and tells which pair it was read for.
"""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest

from dptrack_pipeline.train.geodesic import (
    ASSETS_NPZ,
    GeodesicAssets,
    _read_pdist,
    closest_vertices,
    condensed_index,
    convert_assets,
    geodesic_distances,
    surface_distances_cm,
)

N_VERTICES = 6
# Mesh points: (part, U, V, 1-based vertex as in SMPL_SUBDIV_TRANSFORM's `index`).
MESH = [
    (1, 0.1, 0.1, 1),
    (1, 0.9, 0.1, 2),
    (1, 0.5, 0.9, 3),
    (1, 0.9, 0.9, 3),  # a second point of part 1 on vertex 3
    (2, 0.2, 0.2, 3),  # the seam: vertex 3 (0-based 2) on part 2 too
    (2, 0.8, 0.2, 4),
    (2, 0.5, 0.8, 5),
    (2, 0.9, 0.9, 6),
]


def _distance(a: int, b: int) -> float:
    """Hand-made distance in metres between 0-based vertices."""
    if a == b:
        return 0.0
    high, low = max(a, b), min(a, b)
    return (10 * high + low) / 100.0


def _official_condensed() -> np.ndarray:
    """The matrix as the official file lays it out: (1,0), (2,0), (2,1), (3,0), ... as a column."""
    values = [_distance(a, b) for a in range(1, N_VERTICES) for b in range(a)]
    return np.array(values, dtype=np.float64)[:, None]


def _mesh_arrays() -> dict[str, np.ndarray]:
    table = np.array(MESH, dtype=np.float64)
    # MATLAB variables come as (1, N) rows.
    return {
        "part_id": table[None, :, 0].astype(np.uint8),
        "u": table[None, :, 1],
        "v": table[None, :, 2],
        "index": table[None, :, 3].astype(np.int32),
        "pdist": _official_condensed(),
    }


@pytest.fixture()
def assets() -> GeodesicAssets:
    return GeodesicAssets.from_arrays(**_mesh_arrays())


def test_condensed_index_is_the_official_lower_triangle_order() -> None:
    # k = a (a - 1) / 2 + b for a > b, symmetric.
    high = np.array([1, 2, 2, 3, 3, 3, 4])
    low = np.array([0, 0, 1, 0, 1, 2, 0])
    assert condensed_index(high, low).tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert condensed_index(low, high).tolist() == [0, 1, 2, 3, 4, 5, 6]
    assert condensed_index(np.array([0, 2]), np.array([3, 5])).tolist() == [3, 12]
    # SciPy's squareform order (upper triangle, row-major) puts (0, 3) at 2 for n = 6
    # (n i - i (i + 1) / 2 + j - i - 1 = 0 + 3 - 0 - 1): the official order is a different one.
    assert int(condensed_index(np.array(0), np.array(3))) == 3
    # The largest index of the real matrix (n = 27554) fits int64 without overflow.
    n = 27554
    assert int(condensed_index(np.array(n - 1), np.array(n - 2))) == n * (n - 1) // 2 - 1


def test_assets_from_arrays(assets: GeodesicAssets) -> None:
    assert assets.num_vertices == N_VERTICES
    assert assets.vertex.tolist() == [0, 1, 2, 2, 2, 3, 4, 5]  # 0-based
    assert assets.uv.shape == (len(MESH), 2)
    assert assets.pdist.shape == (N_VERTICES * (N_VERTICES - 1) // 2,)


def test_closest_vertices(assets: GeodesicAssets) -> None:
    I = np.array([1, 1, 1, 2, 2, 2, 0, -1, 1])
    U = np.array([0.0, 0.8, 0.7, 0.25, 0.5, 1.0, 0.5, 0.5, 0.5])
    V = np.array([0.0, 0.2, 0.85, 0.1, 0.7, 1.0, 0.5, 0.5, 0.5])
    # Part 1 point (0.7, 0.85) is equally near mesh points (0.5, 0.9) and (0.9, 0.9): both are
    # vertex 3. The last point (0.5, 0.5) on part 1 is 0.4 from (0.5, 0.9) and 0.566 from the
    # others. Part 2 (0.25, 0.1) is nearest the seam point (0.2, 0.2): vertex 3 again.
    expected = [0, 1, 2, 2, 4, 5, -1, -1, 2]
    assert closest_vertices(assets, I, U, V).tolist() == expected
    # Shapes are kept.
    grid = closest_vertices(assets, I.reshape(3, 3), U.reshape(3, 3), V.reshape(3, 3))
    assert grid.shape == (3, 3) and grid.ravel().tolist() == expected


def test_closest_vertices_breaks_ties_towards_the_lowest_mesh_point() -> None:
    # (0.5, 0.5) is exactly 0.25 from both part-1 points; the official argmin takes the first
    # mesh point, here on vertex 2 (0-based 1), not the lower vertex 1.
    tied = GeodesicAssets.from_arrays(
        part_id=np.array([1, 1, 2]),
        u=np.array([0.25, 0.75, 0.5]),
        v=np.array([0.5, 0.5, 0.5]),
        index=np.array([2, 1, 3]),
        pdist=np.array([1.0, 2.0, 3.0]),
    )
    assert closest_vertices(tied, np.array([1]), np.array([0.5]), np.array([0.5])).tolist() == [1]


def test_geodesic_distances(assets: GeodesicAssets) -> None:
    gt = np.array([0, 3, 1, 2, 5, 4, -1])
    pred = np.array([0, 1, 3, 5, 2, -1, 3])
    out = geodesic_distances(assets, gt, pred)
    # equal -> 0; (3, 1) and (1, 3) -> 0.31 both; (2, 5) -> 0.52; no prediction -> inf;
    # no ground truth -> nan.
    assert out[:5].tolist() == [0.0, 0.31, 0.31, 0.52, 0.52]
    assert np.isinf(out[5]) and np.isnan(out[6])
    # Every pair against the hand-written matrix.
    a, b = np.meshgrid(np.arange(N_VERTICES), np.arange(N_VERTICES), indexing="ij")
    full = geodesic_distances(assets, a.ravel(), b.ravel()).reshape(N_VERTICES, N_VERTICES)
    hand = np.array([[_distance(i, j) for j in range(N_VERTICES)] for i in range(N_VERTICES)])
    np.testing.assert_array_equal(full, hand)


def test_geodesic_distances_checks_its_input(assets: GeodesicAssets) -> None:
    with pytest.raises(ValueError, match="shape"):
        geodesic_distances(assets, np.array([0, 1]), np.array([0]))
    with pytest.raises(ValueError, match="below 6"):
        geodesic_distances(assets, np.array([6]), np.array([0]))


def test_surface_distances_cm(assets: GeodesicAssets) -> None:
    gt = (np.array([1, 2, 2, 1]), np.array([0.1, 0.9, 0.5, 0.9]), np.array([0.1, 0.9, 0.8, 0.1]))
    pred = (np.array([1, 1, 0, 2]), np.array([0.12, 0.5, 0.5, 0.2]), np.array([0.1, 0.9, 0.5, 0.2]))
    out = surface_distances_cm(assets, *gt, *pred)
    # vertex 0 vs 0 -> 0; vertex 5 vs 2 -> 52 cm; background prediction -> inf; the seam:
    # vertex 1 vs 2 (part 2's seam point) -> 21 cm.
    np.testing.assert_allclose(out[[0, 1, 3]], [0.0, 52.0, 21.0])
    assert np.isinf(out[2])


def test_from_arrays_rejects_inconsistent_assets() -> None:
    arrays = _mesh_arrays()
    with pytest.raises(ValueError, match=r"n \(n - 1\) / 2"):
        GeodesicAssets.from_arrays(**{**arrays, "pdist": arrays["pdist"][:-1]})
    with pytest.raises(ValueError, match="1-based"):
        GeodesicAssets.from_arrays(**{**arrays, "index": arrays["index"] - 1})
    with pytest.raises(ValueError, match="one value per mesh point"):
        GeodesicAssets.from_arrays(**{**arrays, "u": arrays["u"][:, :-1]})
    with pytest.raises(ValueError, match="part_id"):
        GeodesicAssets.from_arrays(**{**arrays, "part_id": arrays["part_id"] * 0})


def test_npz_round_trip(tmp_path, assets: GeodesicAssets) -> None:
    path = tmp_path / "assets.npz"
    assets.save_npz(path)
    for source in (path, tmp_path):  # the file, or a folder holding it under its usual name
        if source == tmp_path:
            path.rename(tmp_path / ASSETS_NPZ)
        loaded = GeodesicAssets.load(source)
        assert loaded.num_vertices == N_VERTICES
        np.testing.assert_array_equal(loaded.vertex, assets.vertex)
        np.testing.assert_allclose(loaded.uv, assets.uv, rtol=1e-6)
        assert loaded.pdist.dtype == np.float32
        np.testing.assert_allclose(loaded.pdist, assets.pdist, rtol=1e-6)


def test_load_reports_missing_files(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="SMPL_subdiv.mat"):
        GeodesicAssets.load(tmp_path)


def test_pdist_pickle_and_hdf5_readers(tmp_path) -> None:
    condensed = _official_condensed()
    pkl = tmp_path / "Pdist_matrix.pkl"
    with open(pkl, "wb") as handle:
        pickle.dump({"Pdist_matrix": condensed}, handle, protocol=2)  # as the Python-2 file
    np.testing.assert_array_equal(_read_pdist(pkl), condensed.ravel())
    mat = tmp_path / "Pdist_matrix.mat"  # MATLAB v7.3 is HDF5
    with h5py.File(mat, "w") as handle:
        handle["Pdist_matrix"] = condensed.T
    np.testing.assert_array_equal(_read_pdist(mat), condensed.ravel())


def test_pdist_pickle_reader_refuses_other_objects(tmp_path) -> None:
    path = tmp_path / "Pdist_matrix.pkl"
    with open(path, "wb") as handle:
        pickle.dump({"Pdist_matrix": np.zeros(3), "other": pickle.Pickler}, handle)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        _read_pdist(path)


def _write_official_pickle(folder) -> None:
    with open(folder / "Pdist_matrix.pkl", "wb") as handle:
        pickle.dump({"Pdist_matrix": _official_condensed()}, handle, protocol=2)


def test_official_files_need_scipy(tmp_path) -> None:
    try:
        import scipy.io  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("SciPy is installed: the official files are readable")
    for name in ("SMPL_subdiv.mat", "SMPL_SUBDIV_TRANSFORM.mat"):
        (tmp_path / name).write_bytes(b"not read")
    _write_official_pickle(tmp_path)
    with pytest.raises(ImportError, match="needs SciPy"):
        GeodesicAssets.load(tmp_path)


def test_official_files_and_conversion(tmp_path) -> None:
    scipy_io = pytest.importorskip(
        "scipy.io", reason="SciPy is not installed: MATLAB v5 files cannot be written or read"
    )
    arrays = _mesh_arrays()
    scipy_io.savemat(
        tmp_path / "SMPL_subdiv.mat",
        {"Part_ID_subdiv": arrays["part_id"], "U_subdiv": arrays["u"], "V_subdiv": arrays["v"]},
    )
    scipy_io.savemat(tmp_path / "SMPL_SUBDIV_TRANSFORM.mat", {"index": arrays["index"]})
    _write_official_pickle(tmp_path)
    official = GeodesicAssets.load(tmp_path)
    np.testing.assert_array_equal(official.vertex, [0, 1, 2, 2, 2, 3, 4, 5])
    converted = convert_assets(tmp_path, tmp_path / "out.npz")
    loaded = GeodesicAssets.load(tmp_path / "out.npz")
    gt = np.array([0, 3, 5])
    pred = np.array([1, 1, 2])
    for one in (official, converted, loaded):
        np.testing.assert_allclose(geodesic_distances(one, gt, pred), [0.10, 0.31, 0.52], rtol=1e-6)
