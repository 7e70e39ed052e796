"""Training on dptrack shards: the dataset API, the Hourglass DensePose model, its losses, warps,
evaluation and the ``dptrack-train`` loop.

Modules: :mod:`.dataset` (a torch ``IterableDataset`` over Parquet + HDF5 shards, importable by
any training job), :mod:`.model` (stacked Hourglass), :mod:`.losses`, :mod:`.warps` (flow and
TPS warps), :mod:`.evaluate` (ratios of points within 5/10/20 cm), :mod:`.loop` (schedule,
checkpoints, resume, metrics).

Importing this package imports nothing heavy; import the submodules you need.
"""
