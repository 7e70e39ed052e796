"""Option groups the commands share, declared once, and the small helpers behind them.

* :func:`flow_options` adds the flow-estimator flags (``--estimator``, ``--estimator-option``
  and the FlowNet2 flags) and :func:`estimator_options` turns them into the estimator's options,
  refusing FlowNet2 flags given to another estimator.
* :func:`output_options` adds ``--out``, ``--overwrite``, ``--resume`` and
  ``--progress/--no-progress`` (what they do to the folder: :mod:`dptrack_pipeline.cli.folder`).
* :data:`BEAM_PASSTHROUGH` lets every option a job command does not know through to Beam's
  ``PipelineOptions``; :func:`runs_here` says whether those options keep the work on this machine.
* :func:`shards_option` is ``--num-shards`` with each job's sizing rule in its help.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from typing import Any

import click

from dptrack_pipeline.settings import (
    DEFAULT_CROP_SIZE,
    DEFAULT_ESTIMATOR,
    DEFAULT_FB_THRESHOLD,
    DEFAULT_MAX_OFFSET,
)

Decorator = Callable[[Any], Any]

BEAM_PASSTHROUGH = {"ignore_unknown_options": True, "allow_extra_args": True}
"""``context_settings`` of a job command: unknown options go to Beam (``ctx.args``)."""

BEAM_EPILOG = """\b
Any option not listed above is passed to Apache Beam's PipelineOptions, e.g.
  --direct_num_workers 2 --direct_running_mode multi_processing
  --runner DataflowRunner --project P --region R --temp_location gs://B/tmp
(the DirectRunner runs by default, on this machine).
"""

_LOCAL_RUNNERS = {"", "directrunner", "fnapirunner", "bundlebaseddirectrunner", "prismrunner"}


def runs_here(beam_args: list[str]) -> bool:
    """Whether the Beam options leave the work on this machine (the default DirectRunner)."""
    runner = ""
    for index, arg in enumerate(beam_args):
        if arg.startswith("--runner="):
            runner = arg.split("=", 1)[1]
        elif arg == "--runner" and index + 1 < len(beam_args):
            runner = beam_args[index + 1]
    return runner.lower() in _LOCAL_RUNNERS


def _apply(options: list[Decorator]) -> Decorator:
    """One decorator adding ``options`` in their listed order in ``--help``."""

    def decorate(command: Any) -> Any:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


flow_options = _apply(
    [
        click.option(
            "--estimator",
            default=DEFAULT_ESTIMATOR,
            show_default=True,
            help="Optical flow estimator: dis (OpenCV DIS, preset medium, CPU), farneback (CPU), "
            "flownet2 (FlowNet2, needs --checkpoint; GPU by default), or one an installed package "
            "registers (entry points 'dptrack.estimators', e.g. raft).",
        ),
        click.option(
            "--estimator-option",
            "estimator_option",
            multiple=True,
            metavar="KEY=VALUE",
            help="Estimator option, e.g. preset=fast (dis), fit=pad or compile=true (flownet2). "
            "Repeatable.",
        ),
        click.option(
            "--checkpoint",
            default=None,
            help="flownet2: the public FlowNet2_checkpoint.pth.tar (local path, or gs://... "
            "read by each worker).",
        ),
        click.option(
            "--device",
            default=None,
            metavar="cuda|cuda:N|cpu",
            help="flownet2: where the network runs [default: cuda]. A CUDA device that is not "
            "usable is an error, never a silent CPU fallback.",
        ),
        click.option(
            "--precision",
            type=click.Choice(["fp32", "bf16", "fp16"]),
            default=None,
            help="flownet2: weights and convolutions in this dtype [default: fp32, the published "
            "model]; bf16 is the fast choice on recent GPUs.",
        ),
        click.option(
            "--batch-size",
            type=click.IntRange(1),
            default=None,
            help="flownet2: frame pairs per forward pass [default: 8]; pairs of one video go "
            "together.",
        ),
    ]
)
"""The flow-estimator flags of ``run`` and ``pairs``."""

FLOWNET2_FLAGS = ("checkpoint", "device", "precision", "batch_size")


def _parse_option_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def estimator_options(estimator: str, params: dict[str, Any]) -> dict[str, Any]:
    """The estimator's options from ``--estimator-option KEY=VALUE`` and the FlowNet2 flags.

    Args:
        estimator: ``--estimator``.
        params: the command's parameters (``estimator_option`` and :data:`FLOWNET2_FLAGS`).

    Raises:
        click.BadParameter: an unknown estimator or a malformed ``KEY=VALUE``.
        click.UsageError: a FlowNet2 flag with another estimator.
    """
    from dptrack_pipeline.flow.registry import available_estimators

    if estimator not in available_estimators():
        raise click.BadParameter(
            f"unknown estimator {estimator!r}; available: {', '.join(available_estimators())}",
            param_hint="--estimator",
        )
    options = {}
    for item in params.get("estimator_option") or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(
                f"expected KEY=VALUE, got {item!r}", param_hint="--estimator-option"
            )
        options[key.replace("-", "_")] = _parse_option_value(value)
    given = {k: params[k] for k in FLOWNET2_FLAGS if params.get(k) is not None}
    if given and estimator != "flownet2":
        names = ", ".join("--" + key.replace("_", "-") for key in given)
        raise click.UsageError(
            f"{names}: only for --estimator flownet2 (got --estimator {estimator})"
        )
    options.update(given)
    return options


def output_options(progress_help: str) -> Decorator:
    """``--out``, ``--overwrite``, ``--resume`` and ``--progress/--no-progress`` of a job."""
    return _apply(
        [
            click.option(
                "--out", required=True, help="Output folder for shards and dataset_info.json."
            ),
            click.option(
                "--overwrite",
                is_flag=True,
                help="Start over in a --out that holds shards or an interrupted job.",
            ),
            click.option(
                "--resume",
                is_flag=True,
                help="Finish the interrupted job in --out: shards it completed (checked by "
                "SHA-256) are kept, the rest redone; the result is byte-identical to an "
                "uninterrupted run. Same flags and inputs as the interrupted job.",
            ),
            click.option(
                "--progress/--no-progress", default=True, show_default=True, help=progress_help
            ),
        ]
    )


class Finite(click.FloatRange):
    """A float range that also refuses ``nan`` and ``inf`` (click's ranges let both through)."""

    name = "finite float range"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def value(name: str, default: Any, kind: Any, help_text: str) -> Decorator:
    """An option with a default shown in ``--help`` (``kind``: a click type or range)."""
    return click.option(name, default=default, show_default=True, type=kind, help=help_text)


def path(name: str, help_text: str, *, directory: bool = False, **kwargs: Any) -> Decorator:
    """An option naming an existing file (or folder, ``directory=True``)."""
    kind = click.Path(exists=True, file_okay=not directory, dir_okay=directory)
    return click.option(name, type=kind, help=help_text, **kwargs)


def output_path(name: str, dest: str, help_text: str, *, directory: bool = False) -> Decorator:
    """An option naming a file (or folder) a command writes; it need not exist yet."""
    kind = click.Path(file_okay=not directory, dir_okay=directory)
    return click.option(name, dest, type=kind, help=help_text)


def _offsets(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        offsets = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not comma-separated integers, e.g. 0,1,2") from None
    if any(k < 0 for k in offsets):
        raise click.BadParameter(f"give |offset| values >= 0 (0 = sources), got {value!r}")
    return offsets


def label_filter_options(tag: str) -> Decorator:
    """``--max-fb-error``, ``--min-photo``, ``--min-pckh``, ``--offsets``, ``--min-points``: a
    :class:`~dptrack_pipeline.train.filters.LabelFilter` (:func:`label_filter_from`); ``tag``
    ends each help text (e.g. where the filters are explained)."""
    v2 = "; needs instances schema v2 shards"
    return _apply(
        [
            click.option(
                "--max-fb-error",
                type=Finite(min=0),
                default=None,
                metavar="PX",
                help="Drop propagated DensePose points whose forward-backward error "
                f"(dp_fb_error) is above PX pixels (source-frame pixels); NaN passes. {tag}{v2}.",
            ),
            click.option(
                "--min-photo",
                type=Finite(-1, 1),
                default=None,
                metavar="ZNCC",
                help="Drop propagated points whose photometric agreement (dp_photo: ZNCC of the "
                f"11x11 patches before and after the move, -1..1) is below ZNCC; NaN passes. "
                f"{tag}{v2}.",
            ),
            click.option(
                "--min-pckh",
                type=Finite(0, 1),
                default=None,
                metavar="P",
                help="Drop propagated instances whose PCKh@0.5 against the annotated keypoints "
                f"(pckh, a fraction 0..1) is below P; NaN (nothing compared) passes. {tag}{v2}.",
            ),
            click.option(
                "--offsets",
                default="",
                show_default="all",
                callback=_offsets,
                metavar="K[,K...]",
                help="Keep only rows whose |offset| (frames from the annotated frame) is "
                f"listed, e.g. 0,1,2; 0 = the annotated instances. {tag}.",
            ),
            click.option(
                "--min-points",
                default=0,
                show_default=True,
                type=click.IntRange(0),
                metavar="N",
                help="Drop propagated instances left with fewer DensePose points than this "
                f"after --max-fb-error and --min-photo. {tag}.",
            ),
        ]
    )


def label_filter_from(params: dict[str, Any]) -> Any:
    """The :class:`~dptrack_pipeline.train.filters.LabelFilter` of :func:`label_filter_options`."""
    from dptrack_pipeline.train.filters import LabelFilter

    return LabelFilter(
        max_fb_error=params["max_fb_error"],
        min_photo=params["min_photo"],
        min_pckh=params["min_pckh"],
        offsets=params["offsets"] or None,
        min_points=params["min_points"],
    )


follow_symlinks_option = click.option(
    "--follow-symlinks",
    is_flag=True,
    help="Read frames and videos through symlinks that leave their folder (frame folders that "
    "are symlink farms). By default such a path, like a file_name with '..' or an absolute one, "
    "is rejected as path_outside_root and never opened.",
)


def offsets_option(help_text: str) -> Decorator:
    """``--offsets K`` (1..30)."""
    return value("--offsets", DEFAULT_MAX_OFFSET, click.IntRange(1, 30), help_text)


def fb_threshold_option(help_text: str, default: float | None = DEFAULT_FB_THRESHOLD) -> Decorator:
    """``--fb-threshold PX`` (> 0; ``default`` ``None``: the preset's)."""
    kind = Finite(min=0, min_open=True)
    if default is None:
        return click.option("--fb-threshold", default=None, type=kind, help=help_text)
    return value("--fb-threshold", default, kind, help_text)


def crop_size_option(help_text: str) -> Decorator:
    """``--crop-size S`` (8..1024)."""
    return value("--crop-size", DEFAULT_CROP_SIZE, click.IntRange(8, 1024), help_text)


def shards_option(help_text: str) -> Decorator:
    """``--num-shards N`` (>= 1; default: the job's sizing rule, said in ``help_text``)."""
    return click.option("--num-shards", type=click.IntRange(1), default=None, help=help_text)


def check_runtime(estimator: str, options: dict[str, Any], beam_args: list[str]) -> None:
    """When the work runs here, check that the estimator can run (e.g. CUDA is usable) before
    anything is written."""
    from dptrack_pipeline.flow.registry import create_estimator

    if runs_here(beam_args):
        create_estimator(estimator, **options).check_runtime()


RENAMED_FLAGS = {"max_offset": "offsets"}
"""Config fields whose flag has another name (``--offsets`` sets ``max_offset``)."""


def job_config(cls: Any, params: dict[str, Any], **given: Any) -> Any:
    """A job config (dataclass ``cls``) from a command's parameters: each field takes the flag of
    its name (see :data:`RENAMED_FLAGS`) unless given here.

    Raises:
        ValueError: what the config's own checks refuse.
    """
    values = dict(given)
    for f in dataclasses.fields(cls):
        flag = RENAMED_FLAGS.get(f.name, f.name)
        if f.name not in values and flag in params:
            values[f.name] = params[flag]
    return cls(**values)
