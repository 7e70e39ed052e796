"""How a job command (``run``, ``pairs``) runs: flags -> config -> launcher plan -> pipeline ->
one summary line.

Both commands do the same five things, in this order, so that nothing is written before every
check has passed: build the job's config from the flags (its own checks refuse bad values),
let the launcher prepare the job once (read and validate the inputs, plan, size the shards),
check that the estimator can run here (when the work runs here), make ``--out`` ready
(``--overwrite``), run the pipeline with the Beam options, and print what was written with any
counter that does not add up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from dptrack_pipeline.cli import options as opt


@dataclass(frozen=True)
class Job:
    """What differs between the job commands.

    Attributes:
        config_cls: the job's config dataclass.
        prepare: the launcher, ``config -> prepared``.
        run: the pipeline, ``(config, beam_args, prepared) -> out``.
        kind: the folder kind (:mod:`dptrack_pipeline.shards.counters`).
        prefixes: file name prefixes ``--overwrite`` replaces.
        announce: the line printed before the pipeline starts, from ``(prepared, beam_args)``.
        report: the line printed after it, from the manifest's counters.
    """

    config_cls: Any
    prepare: Callable[[Any], Any]
    run: Callable[[Any, list[str], Any], str]
    kind: str
    prefixes: tuple[str, ...]
    announce: Callable[[Any, str], str]
    report: Callable[[dict[str, int]], str]


def run_job(job: Job, ctx: click.Context, params: dict[str, Any]) -> None:
    """Run ``job`` with a command's parameters and its pass-through Beam options (``ctx.args``)."""
    from dptrack_pipeline.shards import counter_problems, read_dataset_info

    estimator = params["estimator"]
    options = opt.estimator_options(estimator, params)
    try:
        config = opt.job_config(job.config_cls, params, estimator_options=options)
        prepared = job.prepare(config)  # fail on bad files/options before touching --out
        opt.check_runtime(estimator, options, ctx.args)
    except (ValueError, TypeError, RuntimeError) as err:
        raise click.ClickException(str(err)) from err
    opt.prepare_out(config.out, params["overwrite"], job.prefixes)
    click.echo(job.announce(prepared, " ".join(ctx.args) or "(defaults: DirectRunner)"), err=True)
    job.run(config, ctx.args, prepared)
    if "://" not in config.out:
        info = read_dataset_info(config.out)
        click.echo(f"{job.report(info['counters'])} -> {config.out}")
        for problem in counter_problems(info["counters"], job.kind, info["totals"]):
            click.echo(f"warning: {problem}", err=True)
