"""``python -m dptrack_pipeline.cli``: the same as ``dptrack-build``."""

from dptrack_pipeline.cli import main

main()
