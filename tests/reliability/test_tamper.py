"""Tampering and corruption are found, by ``inspect`` (every file's size and SHA-256, schemas,
counters against the files) and by the shard readers (file list from ``dataset_info.json``, sizes
at open, the formats' own checksums as they read, SHA-256 on request), each naming the file."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import pyarrow.parquet as pq
import pytest

from dptrack_pipeline.shards.fletcher32 import fletcher32
from dptrack_pipeline.shards.reader import CorruptShardError
from dptrack_pipeline.train.dataset import PairDataset, ShardDataset
from tests.reliability.conftest import invoke, run_job

SHARDS = 3


@pytest.fixture(scope="module")
def folder(synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished ``run`` folder of 3 shards (all non-empty is not needed)."""
    out = tmp_path_factory.mktemp("tamper") / "clean"
    annotations = synth / "annotations.json"
    outcome = run_job(
        "run", out, "--annotations", annotations, "--frames-root", synth,
        "--num-shards", str(SHARDS), "--offsets", "2",
    )  # fmt: skip
    assert outcome.exit_code == 0
    return out


def _nonempty(folder: Path, prefix: str) -> Path:
    return max(folder.glob(f"{prefix}-*"), key=lambda p: p.stat().st_size)


def _flip(path: Path, where: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0x10
    path.write_bytes(bytes(data))


def _flip_in_page(path: Path) -> None:
    """Flip a byte inside the first data page of column 0 (not the footer)."""
    meta = pq.ParquetFile(path).metadata.row_group(0).column(0)
    start = meta.dictionary_page_offset or meta.data_page_offset
    data = bytearray(path.read_bytes())
    data[start + meta.total_compressed_size // 2] ^= 0x10
    path.write_bytes(bytes(data))


def _flip_in_chunk(path: Path) -> None:
    """Flip a byte inside the stored bytes of crop 0 (not HDF5's metadata)."""
    with h5py.File(path, "r") as fh:
        info = fh["crops"].id.get_chunk_info(0)
    data = bytearray(path.read_bytes())
    data[info.byte_offset + info.size // 2] ^= 0x10
    path.write_bytes(bytes(data))


TAMPERINGS: dict[str, tuple[Callable[[Path], None], str]] = {
    # name: (what is done to a copy of the folder, what inspect says)
    "flipped Parquet byte": (lambda f: _flip_in_page(_nonempty(f, "instances")), "SHA-256"),
    "flipped HDF5 byte": (lambda f: _flip_in_chunk(_nonempty(f, "dense")), "SHA-256"),
    "truncated shard": (
        lambda f: (p := _nonempty(f, "dense")).write_bytes(p.read_bytes()[:-100]),
        "bytes",
    ),
    "deleted shard": (lambda f: _nonempty(f, "instances").unlink(), "missing shard"),
    "extra shard": (
        lambda f: shutil.copy(_nonempty(f, "instances"), f / "instances-00000-of-00004.parquet"),
        "not listed",
    ),
    "no dataset_info.json": (lambda f: (f / "dataset_info.json").unlink(), "no dataset_info"),
    "counters edited": (lambda f: _edit_counter(f), "counters do not add up"),
}


def _edit_counter(folder: Path) -> None:
    path = folder / "dataset_info.json"
    info = json.loads(path.read_text())
    info["counters"]["instances_written"] += 1
    info["counters"]["instances_in"] += 1
    path.write_text(json.dumps(info))


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_inspect_names_the_first_problem_and_exits_nonzero(
    name: str, folder: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    tamper, says = TAMPERINGS[name]
    tamper(copy)
    code, output = invoke(["inspect", copy])
    assert code == 1 and says in output and "Traceback" not in output, output


def test_clean_folder_passes_inspect(folder: Path) -> None:
    code, output = invoke(["inspect", folder])
    assert code == 0 and "verified" in output, output


@pytest.mark.parametrize(
    "name", ["deleted shard", "extra shard", "truncated shard", "no dataset_info.json"]
)
def test_readers_refuse_a_folder_that_disagrees_with_its_manifest(
    name: str, folder: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    TAMPERINGS[name][0](copy)
    with pytest.raises((CorruptShardError, FileNotFoundError)) as err:
        list(ShardDataset(copy, shuffle=False))
    assert str(copy) in str(err.value)


@pytest.mark.parametrize("name", ["flipped Parquet byte", "flipped HDF5 byte"])
def test_readers_catch_a_flipped_byte_as_they_read(name: str, folder: Path, tmp_path: Path) -> None:
    """Without ``verify`` the formats' checksums catch the damage when the bytes are read; with
    ``verify`` the SHA-256 check refuses the folder up front."""
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    TAMPERINGS[name][0](copy)
    dataset = ShardDataset(copy, shuffle=False)  # sizes agree: listing passes
    with pytest.raises(CorruptShardError) as err:
        list(dataset)
    assert str(copy) in str(err.value) and (
        "instances-" in str(err.value) or "dense-" in str(err.value)
    )
    with pytest.raises(CorruptShardError, match="SHA-256"):
        ShardDataset(copy, verify=True)


def test_the_checksums_are_on_in_written_files(folder: Path) -> None:
    """Every Parquet page carries a CRC and every HDF5 chunk HDF5's Fletcher-32 (ours agrees)."""
    dense = _nonempty(folder, "dense")
    with h5py.File(dense, "r") as fh:
        for name in ("crops", "flows", "valid"):
            assert fh[name].fletcher32, name
        _, raw = fh["crops"].id.read_direct_chunk((0, 0, 0, 0))
    assert int.from_bytes(raw[-4:], "little") == fletcher32(raw[:-4])
    path = _nonempty(folder, "instances")
    assert len(list(ShardDataset(folder, shuffle=False, verify=True))) > 0
    pq.read_table(path, page_checksum_verification=True)


def test_train_command_refuses_a_damaged_folder_in_one_line(folder: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    TAMPERINGS["deleted shard"][0](copy)
    code, output = invoke(
        ["train", "--shards", copy, "--out", tmp_path / "t", "--steps", "1", "--no-progress"]
    )
    assert code == 1 and "Traceback" not in output and "missing" in output, output


def test_pair_dataset_takes_its_files_from_the_manifest(tmp_path: Path, synth: Path) -> None:
    out = run_job("pairs", tmp_path / "pairs", "--videos", synth / "frames", "--offsets", "1")
    assert out.exit_code == 0
    assert len(list(PairDataset(tmp_path / "pairs", shuffle=False, verify=True))) > 0
    _nonempty(tmp_path / "pairs", "pairs").unlink()
    with pytest.raises(CorruptShardError, match="missing"):
        PairDataset(tmp_path / "pairs")
