"""Static checks of the two container images, ``Dockerfile`` (CPU) and ``Dockerfile.gpu`` (CUDA).

No Docker engine is needed: the files are parsed as text (line continuations joined, comments
dropped, one ``(instruction, arguments)`` pair per instruction) and checked against what a
Dataflow custom container needs (https://cloud.google.com/dataflow/docs/guides/build-container-image):

* the Beam SDK's boot program at ``/opt/apache/beam/boot`` as the ``ENTRYPOINT``, taken from the
  Beam SDK image of the same Beam and Python versions;
* one Beam version and one Python version, shared by both images, admitted by
  ``requirements.txt`` / ``pyproject.toml``; ``requirements.txt`` pins apache-beam to exactly the
  images' version and the launcher (this venv) runs it (a different launcher *Python* skips with
  the ``--build-arg`` to pass);
* torch pinned as in ``requirements.txt``, from PyPI's CPU index or one CUDA index, and a CUDA
  base image of the same CUDA major.minor as that index;
* the packages of ``requirements.txt`` and nothing else besides torch and ``apache-beam[gcp]``.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

REPO_ROOT = Path(__file__).resolve().parents[1]
BOOT = "/opt/apache/beam/boot"
BEAM_SDK_IMAGE = "apache/beam_python${PYTHON_VERSION}_sdk:${BEAM_VERSION}"
CUDA_INDEX = re.compile(r"^https://download\.pytorch\.org/whl/cu(?P<major>\d+)(?P<minor>\d)$")
CUDA_BASE = re.compile(r"^nvidia/cuda:(?P<major>\d+)\.(?P<minor>\d+)\.\d+-base-ubuntu[\d.]+$")


@dataclass
class Stage:
    """One ``FROM`` of a Dockerfile and the instructions under it."""

    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args_of(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]


@dataclass
class Dockerfile:
    """A parsed Dockerfile: the build arguments declared before the first ``FROM`` (with their
    defaults) and the stages, in order."""

    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def expand(self, text: str) -> str:
        """``text`` with ``${NAME}`` of the global build arguments replaced by their defaults."""
        return re.sub(r"\$\{(\w+)\}", lambda m: self.global_args.get(m[1], m[0]), text)


def instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, continuation lines joined and comments dropped."""
    result: list[tuple[str, str]] = []
    pending: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        joined = " ".join(part for part in pending if part)
        pending = []
        name, _, args = joined.partition(" ")
        result.append((name.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a line continuation"
    return result


def parse(path: Path) -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for name, args in instructions(path.read_text(encoding="utf-8")):
        if name == "FROM":
            words = args.split()
            stage_name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], stage_name))
        elif not stages:
            assert name == "ARG", f"{path.name}: only ARG may come before the first FROM"
            key, _, default = args.partition("=")
            global_args[key] = default
        else:
            stages[-1].instructions.append((name, args))
    return Dockerfile(global_args, stages)


def pip_installs(stage: Stage) -> list[list[str]]:
    """The words after ``pip install`` of every ``pip install`` command of a stage's RUNs."""
    found = []
    for run in stage.args_of("RUN"):
        for command in run.split("&&"):
            words = shlex.split(command)
            if words[:2] == ["pip", "install"]:
                found.append(words[2:])
    return found


def requirement_words(install: list[str]) -> list[str]:
    """The requirement specifiers of one ``pip install`` (options and their values dropped)."""
    words, skip = [], False
    for word in install:
        if skip:
            skip = False
        elif word in ("-r", "--requirement", "--index-url", "-i", "--extra-index-url"):
            skip = True
        elif not word.startswith("-"):
            words.append(word)
    return words


def env_vars(stage: Stage) -> dict[str, str]:
    values: dict[str, str] = {}
    for args in stage.args_of("ENV"):
        for pair in shlex.split(args):
            key, _, value = pair.partition("=")
            values[key] = value
    return values


def pyproject() -> dict:
    """``pyproject.toml`` as a dict (``tomllib`` is Python 3.11+; skip on 3.10)."""
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def requirements() -> dict[str, Requirement]:
    lines = (REPO_ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    reqs = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return {req.name: req for req in reqs}


@pytest.fixture(scope="module")
def cpu_image() -> Dockerfile:
    return parse(REPO_ROOT / "Dockerfile")


@pytest.fixture(scope="module")
def gpu_image() -> Dockerfile:
    return parse(REPO_ROOT / "Dockerfile.gpu")


def test_parser_joins_continuations_and_drops_comments() -> None:
    text = '# c\nARG A=1\nFROM x:${A} AS b\nRUN a \\\n  # inner\n  && b\nENTRYPOINT ["/e"]\n'
    assert instructions(text) == [
        ("ARG", "A=1"),
        ("FROM", "x:${A} AS b"),
        ("RUN", "a && b"),
        ("ENTRYPOINT", '["/e"]'),
    ]


def test_images_share_one_beam_and_python_version(
    cpu_image: Dockerfile, gpu_image: Dockerfile
) -> None:
    assert cpu_image.global_args["BEAM_VERSION"] == gpu_image.global_args["BEAM_VERSION"]
    assert cpu_image.global_args["PYTHON_VERSION"] == gpu_image.global_args["PYTHON_VERSION"]
    beam = Version(cpu_image.global_args["BEAM_VERSION"])
    assert beam in requirements()["apache-beam"].specifier, "BEAM_VERSION outside requirements.txt"
    python = cpu_image.global_args["PYTHON_VERSION"]
    assert Version(python) in Requirement(f"x{pyproject()['project']['requires-python']}").specifier


def test_images_match_the_launcher(cpu_image: Dockerfile) -> None:
    """The launcher (this venv) must run the images' Beam version: ``requirements.txt`` pins
    apache-beam to exactly the images' ``BEAM_VERSION``, so ``make install`` cannot drift from
    them (a Dataflow job whose launcher and workers run different Beam versions fails)."""
    import apache_beam

    beam, python = cpu_image.global_args["BEAM_VERSION"], cpu_image.global_args["PYTHON_VERSION"]
    pinned = requirements()["apache-beam"].specifier
    assert str(pinned) == f"=={beam}", f"requirements.txt pins apache-beam {pinned}, images {beam}"
    assert apache_beam.__version__ == beam, (
        f"this venv runs apache-beam {apache_beam.__version__}, requirements.txt pins {beam}: "
        "run make install"
    )
    here = "{}.{}".format(*sys.version_info[:2])
    if here != python:
        pytest.skip(
            f"this launcher runs Python {here}; the images default to {python}: build them with "
            f"--build-arg PYTHON_VERSION={here}"
        )


@pytest.mark.parametrize("which", ["cpu_image", "gpu_image"])
def test_images_start_the_beam_sdk_boot_program(which: str, request: pytest.FixtureRequest) -> None:
    image: Dockerfile = request.getfixturevalue(which)
    entrypoints = image.final.args_of("ENTRYPOINT")
    assert entrypoints and json.loads(entrypoints[-1]) == [BOOT], "exec-form ENTRYPOINT of boot"
    if image.final.image == BEAM_SDK_IMAGE:
        return  # the CPU image: boot comes with the base
    sdk_stages = [s.name for s in image.stages[:-1] if s.image == BEAM_SDK_IMAGE and s.name]
    assert sdk_stages, f"no stage FROM {BEAM_SDK_IMAGE} AS name"
    copies = image.final.args_of("COPY")
    assert f"--from={sdk_stages[0]} /opt/apache/beam /opt/apache/beam" in copies


def test_cpu_image_pins_torch_from_the_cpu_index(cpu_image: Dockerfile) -> None:
    pin = str(requirements()["torch"])
    torch = [i for i in pip_installs(cpu_image.final) if pin in i]
    assert torch and "https://download.pytorch.org/whl/cpu" in torch[0]


def test_gpu_image_pins_torch_from_a_cuda_index_on_a_matching_base(gpu_image: Dockerfile) -> None:
    pin = str(requirements()["torch"])
    torch = [i for i in pip_installs(gpu_image.final) if pin in i]
    assert torch, f"no `pip install {pin}`"
    index = gpu_image.expand(torch[0][torch[0].index("--index-url") + 1])
    wheel = CUDA_INDEX.match(index)
    assert wheel, f"torch index {index} is not one of PyTorch's CUDA wheel indexes"
    assert gpu_image.final.image == "${CUDA_BASE}"
    base = CUDA_BASE.match(gpu_image.global_args["CUDA_BASE"])
    assert base, f"CUDA_BASE {gpu_image.global_args['CUDA_BASE']} is not an nvidia/cuda base image"
    assert (base["major"], base["minor"]) == (wheel["major"], wheel["minor"])


@pytest.mark.parametrize("which", ["cpu_image", "gpu_image"])
def test_images_install_requirements_and_nothing_else(
    which: str, request: pytest.FixtureRequest
) -> None:
    image: Dockerfile = request.getfixturevalue(which)
    installs = pip_installs(image.final)
    assert "requirements.txt ." in image.final.args_of("COPY")
    assert any(i[i.index("-r") + 1] == "requirements.txt" for i in installs if "-r" in i)
    allowed = {str(requirements()["torch"]), "apache-beam[gcp]==${BEAM_VERSION}", "pip", "."}
    named = {word for install in installs for word in requirement_words(install)}
    assert "apache-beam[gcp]==${BEAM_VERSION}" in named
    assert named <= allowed, f"installed besides requirements.txt: {sorted(named - allowed)}"


@pytest.mark.parametrize("which", ["cpu_image", "gpu_image"])
def test_images_copy_every_package_of_the_project(
    which: str, request: pytest.FixtureRequest
) -> None:
    image: Dockerfile = request.getfixturevalue(which)
    setuptools = pyproject()["tool"]["setuptools"]
    folders = {
        setuptools["package-dir"].get(p, p.replace(".", "/")) for p in setuptools["packages"]
    }
    tops = {folder.split("/")[0] for folder in folders}
    copied = {args.split()[0] for args in image.final.args_of("COPY") if not args.startswith("--")}
    assert tops <= copied, f"packages not copied into the image: {sorted(tops - copied)}"
    assert ["--no-deps", "."] in pip_installs(image.final)


def test_gpu_image_runs_the_sdk_with_its_venv_python(gpu_image: Dockerfile) -> None:
    env = env_vars(gpu_image.final)
    assert env.get("RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT") == "1"
    venv = env["VIRTUAL_ENV"]
    assert env["PATH"].split(":")[0] == f"{venv}/bin"
    assert any(
        f"python${{PYTHON_VERSION}} -m venv {venv}" in run for run in gpu_image.final.args_of("RUN")
    )
