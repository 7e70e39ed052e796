"""How a job command (``run``, ``pairs``) runs: flags -> config -> launcher plan -> pipeline ->
one summary line.

Both commands do the same things, in this order, so that nothing is written before every check
has passed: refuse an ``--out`` that is a file; build the job's config from the flags (its own
checks refuse bad values); let the launcher prepare the job once (read and validate the inputs,
plan, size the shards); check that the estimator can run here (when the work runs here); take
the folder's lock (a second job into the same ``--out`` stops here) and make the folder ready
(:mod:`dptrack_pipeline.cli.folder`: ``--overwrite``, ``--resume``, the ``_RUNNING`` marker); run
the pipeline with the Beam options; print what was written with any counter that does not add
up. A run that fails on an I/O error (disk full, read-only) is one line, with its temporary files
removed and no ``dataset_info.json``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import click

from dptrack_pipeline.cli import folder
from dptrack_pipeline.cli import options as opt

NOTHING_WRITTEN = 3
"""Exit code of a job that finished (manifest and rejects written) but wrote no row: every input
was set aside. 0: rows were written; 1: an error before or during the run; 2: bad flags."""


@dataclass(frozen=True)
class Job:
    """What differs between the job commands.

    Attributes:
        config_cls: the job's config dataclass.
        prepare: the launcher, ``config -> prepared``.
        run: the pipeline, ``(config, beam_args, prepared) -> out``.
        kind: the folder kind (:mod:`dptrack_pipeline.shards.counters`).
        table: the prefix of the index tables (``instances``, ``pairs``).
        prefixes: file name prefixes ``--overwrite`` replaces.
        inputs: the input files of a config whose bytes the run key covers (``--resume``).
        announce: the line printed before the pipeline starts, from ``(prepared, beam_args)``.
        report: the line printed after it, from the manifest's counters.
    """

    config_cls: Any
    prepare: Callable[[Any], Any]
    run: Callable[[Any, list[str], Any], str]
    kind: str
    table: str
    prefixes: tuple[str, ...]
    inputs: Callable[[Any], list[str]]
    announce: Callable[[Any, str], str]
    report: Callable[[dict[str, int]], str]


class _HoldBeamErrors(logging.Filter):
    """Hold back Beam's own ERROR records (a worker's traceback, logged before Beam re-raises
    it), so that a failure the CLI explains is one line; others are let through afterwards."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("apache_beam") and record.levelno >= logging.ERROR:
            self.held.append(record)
            return False
        return True


@contextlib.contextmanager
def _beam_errors_held() -> Iterator[_HoldBeamErrors]:
    hold = _HoldBeamErrors()
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(hold)
    try:
        yield hold
    finally:
        for handler in handlers:
            handler.removeFilter(hold)


def run_job(job: Job, ctx: click.Context, params: dict[str, Any]) -> None:
    """Run ``job`` with a command's parameters and its pass-through Beam options (``ctx.args``)."""
    from dptrack_pipeline.shards import counter_problems, read_dataset_info
    from dptrack_pipeline.shards.lock import FolderBusyError, lock_folder
    from dptrack_pipeline.shards.progress import remove_temp_files, run_key

    folder.check_out(params["out"])
    estimator = params["estimator"]
    options = opt.estimator_options(estimator, params)
    try:
        config = opt.job_config(job.config_cls, params, estimator_options=options)
        prepared = job.prepare(config)  # fail on bad files/options before touching --out
        opt.check_runtime(estimator, options, ctx.args)
    except (ValueError, TypeError, RuntimeError) as err:
        raise click.ClickException(str(err)) from err
    out, shards = config.out, prepared.num_shards
    try:
        with lock_folder(out):
            key = run_key(job.kind, config.to_dict(), shards, job.inputs(config))
            progress = folder.prepare_folder(
                out,
                job.kind,
                key,
                shards,
                job.prefixes,
                overwrite=params["overwrite"],
                resume=params["resume"],
            )
            prepared = dataclasses.replace(prepared, progress=progress)
            beam = " ".join(ctx.args) or "(defaults: DirectRunner)"
            click.echo(job.announce(prepared, beam), err=True)
            with _beam_errors_held() as hold:
                try:
                    job.run(config, ctx.args, prepared)
                except Exception as err:
                    if "://" not in out:
                        remove_temp_files(out)
                    line = folder.describe_failure(err, out)
                    if line is None:
                        for record in hold.held:  # not one we can explain: show all
                            logging.getLogger(record.name).handle(record)
                        raise
                    raise click.ClickException(line) from None
    except FolderBusyError as err:
        raise click.ClickException(str(err)) from None
    except OSError as err:  # the folder itself (lock, marker) cannot be written
        line = folder.describe_failure(err, out)
        if line is None:
            raise
        raise click.ClickException(line) from None
    if "://" not in out:
        info = read_dataset_info(out)
        click.echo(f"{job.report(info['counters'])} -> {out}")
        for problem in counter_problems(info["counters"], job.kind, info["totals"]):
            click.echo(f"warning: {problem}", err=True)
        if not info["totals"].get(job.table, 0):
            click.echo(
                f"no {job.table} row was written: the input was empty or every part of it was "
                f"set aside (reasons in {out}/rejects-*); exit code {NOTHING_WRITTEN}",
                err=True,
            )
            sys.exit(NOTHING_WRITTEN)
