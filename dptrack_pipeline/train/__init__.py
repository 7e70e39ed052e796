"""Training on dptrack shards: the dataset API, the Hourglass DensePose model, its losses, warps,
evaluation and the ``dptrack-train`` loop.

Reading shards (importable by any training job): :mod:`.dataset` (``ShardDataset``,
``PairDataset``: torch ``IterableDataset`` over Parquet + HDF5 shards), built on
:mod:`.shard_index` (which shard files), :mod:`.partition` (which rows per worker and epoch),
:mod:`.filters` (which labels a consumer keeps: ``LabelFilter``), :mod:`.samples` (what a sample
holds; ``collate``) and :mod:`.crop_labels` (DensePose labels on the crop grid). The model and
its maths: :mod:`.model` (stacked Hourglass), :mod:`.losses`, :mod:`.warps` (flow and TPS
warps). Evaluation: :mod:`.evaluate` (ratios of points within
5/10/20 cm), :mod:`.geodesic` and :mod:`.synth_surface` (surface distances), :mod:`.validate`.
The run: :mod:`.config` (``TrainConfig``), :mod:`.streams`, :mod:`.objective`,
:mod:`.checkpoint`, :mod:`.metrics`, :mod:`.loop` (``Trainer``); the command is
:mod:`dptrack_pipeline.cli.train` (``dptrack-build train``, ``dptrack-train``).

Importing this package imports nothing heavy; import the submodules you need.
"""
