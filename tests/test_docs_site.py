"""The docs site (issue 13): an order with Quickstart first, every page listed, an API reference
built from the docstrings, no link out of the repository, and ``mkdocs build --strict`` clean."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML, a dependency of mkdocs, ships no types

import pyvxlan

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _nav_pages(nav: list[Any]) -> list[str]:
    pages: list[str] = []
    for item in nav:
        for value in item.values() if isinstance(item, dict) else [item]:
            pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def _config() -> dict[str, Any]:
    # mkdocs.yml has no custom tags: safe_load reads it.
    data: dict[str, Any] = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    return data


def test_nav_lists_every_page_once_quickstart_first() -> None:
    pages = _nav_pages(_config()["nav"])
    assert pages[0] == "quickstart.md"
    assert sorted(pages) == sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert len(pages) == len(set(pages))


def test_no_link_points_out_of_the_repository() -> None:
    """Markdown links and path-like code spans stay inside the repository (docs/codecs.md named
    a file in shared/, outside it)."""
    bad = []
    for path in [ROOT / "README.md", *DOCS.rglob("*.md")]:
        text = path.read_text()
        for target in re.findall(r"\]\(([^)#\s]+)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            if not (path.parent / target).resolve().is_relative_to(ROOT):
                bad.append(f"{path.name}: {target}")
        for span in re.findall(r"`([^`\n]*(?:\.\./|shared/|research/)[^`\n]*)`", text):
            bad.append(f"{path.name}: {span}")
    assert bad == []


def test_the_api_reference_covers_the_public_modules() -> None:
    text = (DOCS / "api.md").read_text()
    documented = set(re.findall(r"^::: (pyvxlan[\w.]*)", text, re.M))
    # The module each class or function of the package comes from (constants have none).
    homes = {getattr(getattr(pyvxlan, name), "__module__", None) for name in pyvxlan.__all__}
    homes = {h for h in homes if h and h.startswith("pyvxlan.")}
    assert homes <= documented, homes - documented


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    """Every page, link and docstring renders without a warning (the API reference included)."""
    r = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(tmp_path / "site")],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (r.returncode, r.stderr) == (0, "")
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    for name in ("VxlanHeader", "encapsulate", "Vtep", "ForwardingDatabase", "classic_demo", "load_scenario"):
        assert re.search(rf'id="pyvxlan\.[a-z_.]+\.{name}"', api), name
