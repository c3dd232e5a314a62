"""Every registered metric and every top-level name documents itself in numpydoc, and the
examples in those docstrings run (as doctests) and give what they show."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

import disentangle
import disentangle.metrics
from disentangle.metrics import metric_record, list_metrics

SECTIONS = ("Parameters\n", "Returns\n", "References\n", "Examples\n")


def _documented():
    for name in list_metrics():
        yield f"metric {name}", metric_record(name).function
    for name in disentangle.__all__:
        value = getattr(disentangle, name)
        if callable(value) and not isinstance(value, type):
            yield f"disentangle.{name}", value


@pytest.mark.parametrize(("label", "function"), list(_documented()), ids=lambda v: v if isinstance(v, str) else "")
def test_numpydoc_sections(label, function):
    doc = inspect.getdoc(function) or ""
    missing = [s.strip() for s in SECTIONS if s not in doc]
    assert not missing, f"{label} lacks {missing}"
    assert ">>> " in doc.partition("Examples\n")[2], f"{label} has no runnable example"
    if label.startswith("metric "):
        assert ".. math::" in doc, f"{label} does not state its formula"


def _modules_with_examples():
    names = ["disentangle.base.validation", "disentangle.scoring.representation", "disentangle.datasets.base"]
    names += [f"disentangle.metrics.{m.name}" for m in pkgutil.iter_modules(disentangle.metrics.__path__)]
    return names


@pytest.mark.parametrize("module_name", _modules_with_examples())
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0
    functions = {metric_record(n).function.__module__ for n in list_metrics()}
    if module_name in functions or not module_name.startswith("disentangle.metrics"):
        assert result.attempted > 0  # the examples were found: a module that has them runs them


def test_a_wrong_example_fails():
    def shown_wrong():
        """>>> 1 + 1
        3
        """

    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(verbose=False)
    for test in finder.find(shown_wrong, "shown_wrong", globs={}):
        runner.run(test, out=lambda _: None)
    assert runner.failures == 1
