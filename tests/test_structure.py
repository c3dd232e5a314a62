"""The package's shape: no import circles, light imports where the issue promises them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import disentangle

PACKAGE = Path(disentangle.__file__).parent


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports, at the top or inside a function (a lazy import is
    still a dependency). ``from a.b import c`` points at ``a.b.c`` when that is a module, else ``a.b``;
    importing ``a.b.c`` also runs ``a/__init__`` and ``a/b/__init__``, so those are edges too."""
    modules = _modules()

    def resolve(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.update(f"{node.module}.{alias.name}" for alias in node.names)
        resolved = {resolve(t) for t in targets if t.startswith("disentangle")}
        parents = {".".join(t.split(".")[:i]) for t in resolved for i in range(2, t.count(".") + 1)}  # the packages run on the way
        graph[name] = (resolved | parents) - {"", "disentangle", name} - {p for p in parents if name.startswith(p + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_circles():
    graph = import_graph()
    assert "disentangle.orchestration.grid" in graph and "disentangle.orchestration.tasks" in graph["disentangle.orchestration.grid"]  # the graph is read
    assert cycles(graph) == []


def test_the_metrics_import_neither_torch_nor_data_sets():
    code = ("import sys, disentangle.metrics, disentangle.metrics._mig; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'h5py') or m.startswith('disentangle.datasets')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


HEAVY = ("torch", "sklearn", "scipy.stats", "scipy.linalg", "pandas", "matplotlib", "ray")  # seconds each (scipy itself: ms)


def _heavy_modules_after(code: str) -> list[str]:
    shown = f"print(sorted(set(sys.modules) & {set(HEAVY)!r}))"
    out = subprocess.run([sys.executable, "-c", f"import sys\n{code}\n{shown}"], capture_output=True, text=True, check=True).stdout
    return ast.literal_eval(out.splitlines()[-1])


def test_the_command_line_starts_without_its_heavy_libraries():
    """`disentangle --help` (and every command before it runs) loads click and the package's own small
    modules only: torch, scikit-learn and the rest load when a command needs them."""
    assert _heavy_modules_after("import disentangle.cli, disentangle.__main__") == []


def test_train_loads_no_metric_library(tmp_path):
    """Training a run needs torch, not scikit-learn, scipy.stats or pandas (the metrics' libraries: ~1.3 s per process)."""
    code = ("from disentangle.cli import main\n"
            f"main(['train', '--model', 'beta_vae', '--steps', '1', '--batch-size', '4', '--set', 'latent_dim=2', '--quiet',"
            f" '--runs-dir', {str(tmp_path)!r}], standalone_mode=False)")
    assert _heavy_modules_after(code) == ["torch"]


def test_importing_and_drawing_leave_matplotlibs_backend_and_style_alone():
    """A notebook's backend and rcParams are the user's: the figures draw on figures of their own."""
    code = ("import matplotlib\nmatplotlib.use('pdf')\nsize = matplotlib.rcParams['font.size']\n"
            "import disentangle, disentangle.reports.viz, disentangle.reports.site, disentangle.base.images as images\n"
            "images.new_figure(figsize=(1, 1))\n"
            "print(matplotlib.get_backend(), matplotlib.rcParams['font.size'] == size)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["pdf", "True"]


def test_the_layers_import_only_downward():
    """The declared layer order (pyproject.toml, [tool.importlinter]), lazy imports included, checked by import-linter."""
    result = subprocess.run(["lint-imports", "--no-cache"], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "5 kept, 0 broken" in result.stdout


def test_the_tree_is_the_layer_order():
    """Every module at the package's root is a layer of the contract (a new module cannot sit outside the order),
    and each layer package's own modules are in its contract: the tree read top-down is the layer order."""
    import tomllib

    contracts = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    declared = {c["containers"][0]: {m.strip() for layer in c["layers"] for m in layer.split("|")} for c in contracts}
    top = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if p.name != "__init__.py"
           and (p.suffix == ".py" or (p / "__init__.py").exists())}
    assert top == declared["disentangle"]
    for package in ("orchestration", "lifecycle", "reports", "base"):
        own = {p.stem if p.is_file() else p.name for p in (PACKAGE / package).iterdir() if p.name != "__init__.py"
               and (p.suffix == ".py" or (p / "__init__.py").exists())}
        assert own == declared[f"disentangle.{package}"], package


def test_the_subpackages_are_reached_from_the_package_and_training_loads_lightly():
    code = ("import sys, disentangle; disentangle.datasets.get_dataset; disentangle.metrics.mig; disentangle.models.get_model\n"
            "import disentangle.lifecycle.training.checkpoint\n"
            "print(sorted(m for m in sys.modules if m.endswith(('.trainer', '.trackers', '.setup'))))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_scoring_codes_loads_no_torch_and_train_with_a_tracker_no_metric_library(tmp_path):
    code = ("import numpy as np, disentangle\n"
            "f = np.array([(a, b) for a in range(4) for b in range(4)] * 20); c = f + np.random.default_rng(0).normal(size=f.shape)\n"
            "disentangle.evaluate_codes(c, f, c, f, ['mig'], profile='tiny')")
    assert "torch" not in _heavy_modules_after(code)
    pytest.importorskip("tensorboard")
    code = ("from disentangle.cli import main\n"
            f"main(['train', '--model', 'beta_vae', '--steps', '2', '--checkpoint-every', '1', '--batch-size', '4', '--set', 'latent_dim=2',"
            f" '--quiet', '--logger', 'tensorboard', '--runs-dir', {str(tmp_path)!r}], standalone_mode=False)\n"
            "print([m for m in sys.modules if m.startswith('disentangle.metrics') or m.startswith('disentangle.reports.viz')])")
    out = subprocess.run([sys.executable, "-c", f"import sys\n{code}"], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "[]"
    assert not set(_heavy_modules_after(code.rsplit("\n", 1)[0])) & {"sklearn", "scipy.stats", "pandas"}


def test_the_command_line_starts_without_numpy():
    """`disentangle --help` loads no numpy either (0.1 s against 0.5 s with it, Zen 4, 2026-12-03)."""
    assert "numpy" not in subprocess.run([sys.executable, "-c", "import sys, disentangle.cli, disentangle.__main__; print(sorted(sys.modules))"],
                                         capture_output=True, text=True, check=True).stdout


def test_the_registries_share_one_vocabulary():
    """list_<kind>s names, get_<kind> gives one ready to use, <kind>_class (a metric: metric_record) the entry."""
    from disentangle.datasets import dataset_class, get_dataset, list_datasets
    from disentangle.metrics import get_metric, list_metrics, metric_record, mig
    from disentangle.models import get_model, list_models, model_class
    from disentangle.orchestration.executors import get_executor, list_executors

    assert get_metric("mig") is mig and metric_record("mig").function is mig and "mig" in list_metrics()
    assert isinstance(get_model("beta_vae", observation_shape=(1, 64, 64)), model_class("beta_vae")) and "beta_vae" in list_models()
    assert isinstance(get_dataset("dsprites"), dataset_class("dsprites")) and "dsprites" in list_datasets()
    assert type(get_executor("local", workers=1)).name == "local" and "local" in list_executors()
