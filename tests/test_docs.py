"""Every ```python block in README.md and docs/*.md runs, so the docs cannot rot.

The blocks of one file run in order in one namespace, in a temporary working directory. A block
whose first line is ``# doc: no-run`` is shown but not run (for commands needing root, say).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path: Path) -> list[tuple[int, str]]:
    text = path.read_text()
    blocks = []
    for m in _BLOCK.finditer(text):
        code = m.group(1)
        if code.lstrip().startswith("# doc: no-run"):
            continue
        blocks.append((text.count("\n", 0, m.start()) + 2, code))
    return blocks


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_doc_code_blocks_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(path)
    if not blocks:
        return
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"doc_{path.stem}"}
    for line, code in blocks:
        try:
            exec(compile(code, f"{path.name}:{line}", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the failure message is the point
            raise AssertionError(f"{path.relative_to(ROOT)} block at line {line} failed: {exc!r}") from exc
    assert os.getcwd() == str(tmp_path)


def test_doctests_in_modules() -> None:
    import doctest
    import importlib
    import pkgutil

    import pyvxlan

    failures = 0
    for info in pkgutil.walk_packages(pyvxlan.__path__, "pyvxlan."):
        if info.name.startswith(("pyvxlan.kernel", "pyvxlan.cli")):
            continue
        module = importlib.import_module(info.name)
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        failures += result.failed
    assert failures == 0
