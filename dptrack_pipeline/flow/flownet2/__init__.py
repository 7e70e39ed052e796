"""FlowNet2 in plain PyTorch: the network, its correlation, the checkpoint loader and the
``"flownet2"`` estimator.

Submodules: :mod:`.correlation` (reference loop and tiled-matmul correlation), :mod:`.model`
(FlowNetC/S/SD/Fusion and the stack), :mod:`.checkpoint` (strict loading with named errors),
:mod:`.inference` (any size in, pixel flow out), :mod:`.estimator` (the registered estimator).

Importing this package does not import torch; the estimator loads it in ``setup``.
"""

from dptrack_pipeline.flow.flownet2 import estimator as _estimator  # noqa: F401  (registers it)
