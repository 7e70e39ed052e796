"""``dptrack-build``: the command line. Thin: each command parses flags and calls the library.

One module per command: ``run`` (the main job), ``pairs`` (flow pairs from unlabelled video),
``inspect`` (what a folder holds, and is it intact), ``validate`` (what is wrong with an
annotation file), ``synth`` (a small dataset with exact truth), ``score`` (a run against that
truth) and ``train`` (the trainer, also installed as ``dptrack-train``). Flags several commands
share are declared once in :mod:`dptrack_pipeline.cli.options`. ``dptrack-build COMMAND --help``
explains each.
"""

from __future__ import annotations

import logging

import click

from dptrack_pipeline.cli.export import export
from dptrack_pipeline.cli.inspect import inspect
from dptrack_pipeline.cli.pairs import pairs
from dptrack_pipeline.cli.report import report
from dptrack_pipeline.cli.run import run
from dptrack_pipeline.cli.score import score
from dptrack_pipeline.cli.synth import synth
from dptrack_pipeline.cli.train import train
from dptrack_pipeline.cli.validate import validate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="dptrack")
def main(verbose: int) -> None:
    """dptrack: DensePose-Track derivatives from a few labelled frames and optical flow.

    \b
    Typical session:
      dptrack-build synth demo/synth --videos 3 --frames 24     # data with exact truth
      dptrack-build run --annotations demo/synth/annotations.json \\
          --frames-root demo/synth --out demo/shards            # propagate labels T±1..3
      dptrack-build inspect demo/shards --render demo/render    # counts and pictures
      dptrack-build score demo/shards --truth demo/synth        # accuracy vs truth
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s"
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(_drop_import_noise)


def _drop_import_noise(record: logging.LogRecord) -> bool:
    """Beam warns on every import that the optional GCP client libraries are absent; that says
    nothing about the job (a ``gs://`` run that needs them fails with its own error)."""
    return not (record.name == "root" and str(record.msg).startswith("apitools not found"))


for _command in (run, pairs, export, inspect, report, validate, synth, score, train):
    main.add_command(_command)

__all__ = ["main"]
