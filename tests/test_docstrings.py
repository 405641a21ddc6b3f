"""The docstrings' examples: every ``>>>`` example runs (doctest) and every ``Example::`` block of
a public module, class or function is valid Python (it compiles). The guide's examples run in
tests/test_readme.py."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import re
import textwrap

import cfx


def _modules():
    names = ["cfx"] + [m.name for m in pkgutil.walk_packages(cfx.__path__, "cfx.") if "__main__" not in m.name]
    return [importlib.import_module(name) for name in sorted(names)]


def _docstrings(module):
    """(qualified name, docstring) of the module and its own classes, functions and methods."""
    yield module.__name__, module.__doc__
    for name, obj in vars(module).items():
        if getattr(obj, "__module__", None) != module.__name__ or not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        yield f"{module.__name__}.{name}", obj.__doc__
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if inspect.isfunction(member):
                    yield f"{module.__name__}.{name}.{attr}", member.__doc__


def _example_blocks(doc: str) -> list[str]:
    """The indented blocks after ``Example::`` / ``Examples::`` (reST literal blocks)."""
    blocks = []
    for match in re.finditer(r"Examples?::\n\s*\n((?:[ \t]+\S.*\n|[ \t]*\n)+)", doc + "\n"):
        blocks.append(textwrap.dedent(match.group(1)))
    return blocks


MODULES = _modules()


def test_every_example_block_compiles():
    bad, count = [], 0
    for module in MODULES:
        for where, doc in _docstrings(module):
            for block in _example_blocks(inspect.cleandoc(doc) if doc else ""):
                if ">>>" in block:  # a doctest: run below
                    continue
                count += 1
                try:
                    compile(block, where, "exec")
                except SyntaxError as e:
                    bad.append(f"{where}: {e.msg} in\n{block}")
    assert count > 30, f"only {count} example blocks found: is the pattern right?"
    assert not bad, "\n\n".join(bad)


def test_doctests():
    finder = doctest.DocTestFinder(exclude_empty=True)
    ran, failed = 0, []
    for module in MODULES:
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        for test in finder.find(module, module.__name__, globs=dict(vars(module))):
            runner.run(test)
        result = runner.summarize(verbose=False)
        ran += result.attempted
        if result.failed:
            failed.append(module.__name__)
    assert ran >= 1 and not failed, f"doctests failed in {failed} (run python -m doctest -v on them)"
