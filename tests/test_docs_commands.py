"""Every `disentangle ...` command the README and the manual show exists, with the options it names:
checked against the click command tree and the registries (a README once showed `train --model
beta_vae --set gamma=35`, an option β-VAE does not take)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest

from disentangle.cli import main
from disentangle.datasets import DATASETS
from disentangle.metrics import metric_record
from disentangle.models.registry import MODELS
from disentangle.base.registry import function_schema

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def command_lines(text: str) -> list[str]:
    """`disentangle ...` lines of fenced blocks and inline code spans."""
    lines = []
    for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", text, flags=re.S):
        lines += [line.strip() for line in block.splitlines() if line.strip().startswith("disentangle ")]
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    lines += [span.strip() for span in re.findall(r"`(disentangle [^`]+)`", text.replace("\n", " "))]
    return lines


def _is_placeholder(text: str) -> bool:
    return text.split("=")[0].split(".")[0].isupper() or "<" in text


def check_command(line: str) -> None:
    """Raise AssertionError naming what in ``line`` the command tree or a registry does not have."""
    tokens = [t.strip("[]") for t in shlex.split(line.replace("&&", "#"), comments=True)]
    assert tokens[0] == "disentangle", line
    command, i = main, 1
    while isinstance(command, click.Group):
        if i < len(tokens) and (tokens[i].isupper() or tokens[i] in ("--help", "--version")):  # `disentangle COMMAND --help`
            return
        assert i < len(tokens) and tokens[i] in command.commands, f"{line!r}: no command {tokens[i:i + 1]} under {command.name}"
        command, i = command.commands[tokens[i]], i + 1
    options = {name for param in command.params for name in (*param.opts, *param.secondary_opts)}
    given = {}
    for position, token in enumerate(tokens[i:], start=i):
        if token.startswith("--"):
            name = token.split("=")[0]
            assert name in options, f"{line!r}: {command.name} has no option {name}"
            value = token.partition("=")[2] or (tokens[position + 1] if position + 1 < len(tokens) else "")
            given.setdefault(name, []).append(value)
    model = (given.get("--model") or [None])[0]
    if model and not _is_placeholder(model):
        assert model in MODELS.names(), f"{line!r}: no model {model}"
        for setting in given.get("--set", []):
            if not _is_placeholder(setting):
                key = setting.split("=")[0]
                assert key in MODELS.options(model), f"{line!r}: model {model} takes no option {key}"
    dataset = (given.get("--dataset") or ["dsprites"])[0]
    for setting in given.get("--dataset-option", []):
        if not _is_placeholder(setting) and not _is_placeholder(dataset):
            assert setting.split("=")[0] in DATASETS.options(dataset), f"{line!r}: data set {dataset} takes no option {setting}"
    for names in given.get("--metrics", []) + given.get("--evaluate", []):
        for name in filter(None, names.split(",")):
            if not _is_placeholder(name) and name != "...":
                metric_record(name)
    if command.name == "evaluate":
        for setting in given.get("--set", []):
            if not _is_placeholder(setting):
                metric, _, key = setting.split("=")[0].partition(".")
                assert key in metric_record(metric).settings("published") or key in function_schema(metric_record(metric).function), line


def test_the_pages_show_commands():
    assert len(command_lines(PAGES[0].read_text())) >= 6
    assert sum(len(command_lines(page.read_text())) for page in PAGES) >= 30


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_shown_exists_with_its_options(page):
    problems = []
    for line in command_lines(page.read_text()):
        try:
            check_command(line)
        except (AssertionError, Exception) as error:  # a registry's one-line error counts too
            problems.append(str(error))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("line", "message"), [
    ("disentangle train --model beta_vae --set gamma=35", "takes no option gamma"),
    ("disentangle trian --model vae", "no command"),
    ("disentangle grid --stpes 4", "has no option --stpes"),
    ("disentangle evaluate runs/x --metrics mig,nope", "unknown metric 'nope'"),
])
def test_the_check_catches_what_it_is_for(line, message):
    with pytest.raises(Exception, match=message):
        check_command(line)


def test_the_manual_builds_strictly(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True, env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin",
                                                                          "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_readme_stays_short():
    assert len(PAGES[0].read_bytes()) <= 15_000


def _planned(line: str, runs_dir: Path):
    """``line`` (a `disentangle grid ...` the pages show) run with --dry-run into ``runs_dir``: the grid it means is
    resolved and checked (values, not only names) and nothing is trained. Placeholders (HOST:PORT) are left out."""
    from click.testing import CliRunner

    tokens = [t.strip("[]") for t in shlex.split(line, comments=True)][1:]
    kept = []
    for token in tokens:
        if kept and kept[-1] == "--address" and token.isupper() or ":" in token and token.split(":")[0].isupper():
            kept.pop()
            continue
        kept.append(token)
    kept = [t for i, t in enumerate(kept) if not (t == "--runs-dir" or (i and kept[i - 1] == "--runs-dir"))]
    return CliRunner().invoke(main, [*kept, "--dry-run", "--runs-dir", str(runs_dir)])


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_grid_shown_means_a_grid_that_plans(page, tmp_path, monkeypatch):
    """What a shown grid's options mean, checked by planning it (the same resolve and check a real grid runs
    first): a value the grid would refuse (a precision, a device spelling, an executor option, a study file's
    key) fails here, not only an option name. Run from the repository root, where the shown study files are."""
    monkeypatch.chdir(ROOT)
    problems = []
    for line in command_lines(page.read_text()):
        if line.startswith("disentangle grid"):
            result = _planned(line, tmp_path / "runs")
            if result.exit_code != 0:
                problems.append(f"{line!r}: {result.output.strip().splitlines()[-1] if result.output.strip() else result.exception}")
    assert not problems, "\n".join(problems)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # planned, nothing made


def test_planning_catches_a_value_the_names_check_cannot(tmp_path):
    result = _planned("disentangle grid --model beta_vae --beta 1,4 --precision fp16", tmp_path)
    assert result.exit_code == 2 and "precision must be one of" in result.output
    result = _planned("disentangle grid --model beta_vae --device gpu", tmp_path)
    assert result.exit_code == 2 and "unknown device 'gpu'" in result.output
