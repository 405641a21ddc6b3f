"""The README's Python examples run as written: "From Python" and "Extending cfx"."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(section: str) -> list[str]:
    """The ```python blocks of one ``## section`` of README.md, in order."""
    text = README.read_text()
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    body = text[start:end if end > 0 else None]
    return re.findall(r"```python\n(.*?)```", body, flags=re.S)


@pytest.mark.parametrize("section", ["From Python", "Extending cfx"])
def test_readme_section_runs(section, tmp_path, monkeypatch):
    blocks = python_blocks(section)
    assert blocks, f"README has no python example under '## {section}'"
    monkeypatch.chdir(tmp_path)  # examples may write results folders
    import cfx.evaluation.registry
    import cfx.experiments
    import cfx.generators

    # the example registers a generator, a metric and a kind: keep them out of the other tests
    saved = [(r, dict(r)) for r in (cfx.generators.REGISTRY, cfx.evaluation.registry._REGISTRY,
                                    cfx.experiments.KINDS)]
    module = types.ModuleType("readme_example")  # dataclasses look their module up in sys.modules
    monkeypatch.setitem(sys.modules, module.__name__, module)
    try:
        for block in blocks:
            exec(compile(block, f"README.md ({section})", "exec"), module.__dict__)
    finally:
        for registry, before in saved:
            registry.clear()
            registry.update(before)
