"""The README and the guide under docs/: their examples run as written, the guide builds
(`mkdocs build --strict`, the API reference rendered from the docstrings), every public symbol
has a docstring, every page is in the navigation and every registered metric is documented."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import shutil
import subprocess
import sys
import types
import warnings
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PUBLIC_MODULES = (
    "cfx",
    "cfx.search",
    "cfx.registry",
    "cfx.generators",
    "cfx.data",
    "cfx.models",
    "cfx.evaluation",
    "cfx.training",
    "cfx.dynamics",
    "cfx.experiments",
)


def python_blocks(text: str, section: str | None = None) -> list[str]:
    """The ```python blocks of a markdown text, or of one of its ``## section``s."""
    if section is not None:
        start = text.index(f"\n## {section}\n")
        end = text.find("\n## ", start + 1)
        text = text[start : end if end > 0 else None]
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("source", ["README.md#From Python", "docs/getting-started.md", "docs/extending.md"])
def test_examples_run(source, tmp_path, monkeypatch):
    path, _, section = source.partition("#")
    blocks = python_blocks((ROOT / path).read_text(), section or None)
    assert blocks, f"{source} has no python example"
    monkeypatch.chdir(tmp_path)  # examples may write results folders
    import cfx.evaluation.registry
    import cfx.experiments
    import cfx.generators

    # the examples register a generator, a metric, a model and a kind: keep them out of the other tests
    saved = [
        (r, dict(r))
        for r in (cfx.generators.REGISTRY, cfx.evaluation.registry._REGISTRY, cfx.experiments.KINDS, cfx.models.MODELS)
    ]
    module = types.ModuleType("docs_example")  # dataclasses look their module up in sys.modules
    monkeypatch.setitem(sys.modules, module.__name__, module)
    from cfx._deprecated import CfxDeprecationWarning

    try:
        with warnings.catch_warnings():  # the examples use no deprecated cfx name (CHANGELOG.md)
            warnings.simplefilter("error", CfxDeprecationWarning)
            for block in blocks:
                exec(compile(block, source, "exec"), module.__dict__)
    finally:
        for registry, before in saved:
            registry.clear()
            registry.update(before)


def test_readme_is_one_screen_and_links_resolve():
    text = README.read_text()
    assert len(text.splitlines()) <= 110, "README is the front page: move detail into docs/"
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), f"README links to a missing file: {target}"


def test_every_page_is_in_the_nav():
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    listed = set(re.findall(r"[\w-]+\.md", str(nav)))
    pages = {p.name for p in DOCS.glob("*.md")}
    assert pages - listed == set(), f"pages missing from mkdocs.yml's nav: {sorted(pages - listed)}"
    assert listed - pages == set(), f"nav entries without a page: {sorted(listed - pages)}"


def _public_modules() -> list[str]:
    """Every module of cfx whose dotted name has no ``_private`` part (the deprecated ``cfx.losses`` aside)."""
    import pkgutil

    import cfx

    found = [m.name for m in pkgutil.walk_packages(cfx.__path__, "cfx.")]
    return ["cfx"] + sorted(
        n for n in found if not any(p.startswith("_") for p in n.split(".")[1:]) and n != "cfx.losses"
    )


def _undocumented_members(cls) -> list[str]:
    """The public methods, class/static methods and properties ``cls`` defines without a docstring."""
    out = []
    for attr, member in vars(cls).items():
        if attr.startswith("_"):
            continue
        fn = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
        if inspect.isfunction(fn) and not fn.__doc__ and not inspect.getdoc(getattr(cls, attr, None)):
            out.append(attr)
    return out


def test_every_public_symbol_has_a_docstring():
    """A public module's public functions and classes (its ``__all__``, else the public names it
    defines) each have a docstring: the API reference renders them."""
    missing = []
    for name in _public_modules():
        module = importlib.import_module(name)
        symbols = getattr(module, "__all__", None)
        if symbols is None:
            symbols = [k for k, v in vars(module).items() if getattr(v, "__module__", None) == name]
        for symbol in symbols:
            obj = getattr(module, symbol)
            if symbol.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if not inspect.getdoc(obj):
                missing.append(f"{name}.{symbol}")
            if inspect.isclass(obj) and obj.__module__ == name:  # its own public methods and properties
                missing += [f"{name}.{symbol}.{m}" for m in _undocumented_members(obj)]
    assert set(PUBLIC_MODULES) <= set(_public_modules())
    assert not missing, f"public symbols without a docstring: {missing}"


def test_every_metric_is_documented():
    import cfx.evaluation

    page = (DOCS / "evaluation.md").read_text()
    undocumented = [m for m in cfx.evaluation.list_metrics() if f"`{m}`" not in page]
    assert not undocumented, f"metrics missing from docs/evaluation.md: {undocumented}"


@pytest.mark.skipif(
    shutil.which("mkdocs") is None and importlib.util.find_spec("mkdocs") is None,
    reason="mkdocs is not installed (pip install -e '.[docs]')",
)
def test_docs_build_strict(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert 'id="cfx.generate"' in api and 'id="cfx.generators.Generator"' in api
