"""Output shards: schemas, naming, hashing, atomic writes, Parquet/HDF5 writers, manifest, readers.

One module per question, after TensorFlow Datasets' writer/shuffle/hashing/naming split:

* :mod:`~dptrack_pipeline.shards.schema` - what is in each file (loads ``schemas/``).
* :mod:`~dptrack_pipeline.shards.naming` - how a shard file is named.
* :mod:`~dptrack_pipeline.shards.hashing` - which shard an example goes to; file digests.
* :mod:`~dptrack_pipeline.shards.atomic` - how a file is written all-or-nothing.
* :mod:`~dptrack_pipeline.shards.files` - how one shard file is written (atomic, digested, pinned
  Parquet options).
* :mod:`~dptrack_pipeline.shards.columns` - how rows become Arrow columns of the schema's types.
* :mod:`~dptrack_pipeline.shards.hdf5_writer` - how dense arrays are laid out in HDF5.
* :mod:`~dptrack_pipeline.shards.parquet_writer` - how one ``run`` shard (instances + arrays) and
  one rejects shard are written; :mod:`~dptrack_pipeline.shards.pairs_writer` - one ``pairs``
  shard.
* :mod:`~dptrack_pipeline.shards.counters` - whether a folder's counters add up.
* :mod:`~dptrack_pipeline.shards.manifest` - what ``dataset_info.json`` records.
* :mod:`~dptrack_pipeline.shards.reader` - how a folder is read back.
* :mod:`~dptrack_pipeline.shards.verify` - whether a folder is complete and intact.

A folder produced with ``num_shards = n`` holds ``instances-i-of-n.parquet``,
``dense-i-of-n.h5`` and ``rejects-i-of-n.parquet`` for every ``i < n``, plus ``dataset_info.json``.
"""

from dptrack_pipeline.shards.atomic import atomic_write
from dptrack_pipeline.shards.counters import REQUIRED_COUNTERS, counter_problems
from dptrack_pipeline.shards.hashing import file_digest, shard_for_key, stable_hash
from dptrack_pipeline.shards.manifest import (
    build_dataset_info,
    read_dataset_info,
    validate_dataset_info,
    write_dataset_info,
)
from dptrack_pipeline.shards.naming import (
    PREFIX_DENSE,
    PREFIX_INSTANCES,
    PREFIX_PAIRS,
    PREFIX_REJECTS,
    parse_shard_filename,
    shard_filename,
)
from dptrack_pipeline.shards.parquet_writer import (
    RECORD_SORT_KEY,
    ShardRecord,
    pack_record,
    write_instance_shard,
    write_rejects_shard,
)
from dptrack_pipeline.shards.reader import (
    DenseReader,
    SchemaMismatchError,
    list_shards,
    read_instances,
    read_pairs,
    read_rejects,
)
from dptrack_pipeline.shards.schema import (
    current_version,
    load_hdf5_schema,
    load_json_schema,
    load_parquet_schema,
)
from dptrack_pipeline.shards.verify import verify_output

__all__ = [
    "PREFIX_DENSE",
    "PREFIX_INSTANCES",
    "PREFIX_PAIRS",
    "PREFIX_REJECTS",
    "RECORD_SORT_KEY",
    "REQUIRED_COUNTERS",
    "DenseReader",
    "SchemaMismatchError",
    "ShardRecord",
    "pack_record",
    "atomic_write",
    "build_dataset_info",
    "counter_problems",
    "current_version",
    "file_digest",
    "list_shards",
    "load_hdf5_schema",
    "load_json_schema",
    "load_parquet_schema",
    "parse_shard_filename",
    "read_dataset_info",
    "read_instances",
    "read_pairs",
    "read_rejects",
    "shard_filename",
    "shard_for_key",
    "stable_hash",
    "validate_dataset_info",
    "verify_output",
    "write_dataset_info",
    "write_instance_shard",
    "write_rejects_shard",
]
