"""The folders are the layers (docs/index.md's table): each imports only from the layers above it.

The codecs (``wire``) know nothing of the core, the core nothing of labs or drivers, the lab
description nothing of the drivers that realize it. The public entry points at the top level
(``pyvxlan``, ``strategies``, ``testing``, ``replay`` and the short import paths) may import any
layer, and only the tools (``cli``, ``conform``) import them back; ``pyvxlan.errors``, which every layer
uses, imports nothing of pyvxlan.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "pyvxlan"

# Lower rank = nearer the wire. Folders of one rank are one layer and may use each other: the
# userspace VTEP's guests and bridge are the simulator's. EVPN is a control plane beside the lab's
# controller policy (it needs only the codecs and the core), so the drivers run it: the simulator's
# evpn mode, the kernel lab's bridge feeding the agent.
RANK = {"wire": 0, "core": 1, "lab": 2, "evpn": 2, "sim": 3, "kernel": 3, "udp": 3, "conform": 5, "cli": 5}
TOOLS = 5  # the command line and the oracle sit outermost: they may use the entry points too


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every pyvxlan import in ``path``, at module level or inside functions."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "pyvxlan":
            if node.module == "pyvxlan":
                found += [(node.lineno, f"pyvxlan.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "pyvxlan"]
    return found


def violations() -> list[str]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if len(rel.parts) == 1 and rel.stem != "errors":
            continue  # a public entry point: it may use every layer
        for line, module in imports(path):
            parts = module.split(".")
            target = parts[1] if len(parts) > 1 else ""
            where = f"pyvxlan/{rel}:{line} imports {module}"
            if rel.stem == "errors" and len(rel.parts) == 1:
                out.append(f"{where}: pyvxlan.errors imports nothing of pyvxlan")
            elif target in {"errors", "__version__"}:
                continue
            elif target not in RANK:
                if RANK[rel.parts[0]] < TOOLS:
                    out.append(f"{where}: only the tools import the top-level entry points")
            elif target != rel.parts[0] and RANK[target] > RANK[rel.parts[0]]:
                out.append(f"{where}: {rel.parts[0]} (rank {RANK[rel.parts[0]]}) below {target} ({RANK[target]})")
    return out


def test_every_folder_is_a_layer_in_the_table() -> None:
    folders = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(RANK)


def test_each_layer_imports_only_from_the_layers_above_it() -> None:
    assert violations() == []


def test_the_check_sees_a_wrong_import(tmp_path: Path) -> None:
    """The checker itself: a core module importing the simulator is named, with its line."""
    bad = tmp_path / "bad.py"
    bad.write_text("from __future__ import annotations\n\ndef f() -> None:\n    from pyvxlan.sim.lab import SimLab\n")
    assert imports(bad) == [(4, "pyvxlan.sim.lab")]


def test_no_module_imports_another_modules_private_names() -> None:
    """What one module shares with another is public and named: no ``from pyvxlan.x import _y``,
    no import of a private module, anywhere in the package."""
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        own = ".".join(("pyvxlan", *path.relative_to(ROOT).with_suffix("").parts)).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "pyvxlan"):
                continue
            if node.module == own:
                continue
            parts = node.module.split(".")
            names = [a.name for a in node.names]
            private = [n for n in [*parts, *names] if n.startswith("_") and not n.startswith("__")]
            if private:
                found.append(f"pyvxlan/{path.relative_to(ROOT)}:{node.lineno} from {node.module} import {private}")
    assert found == []


# The import paths the README and the guides use, each with a name it must offer.
PUBLIC_PATHS = {
    "pyvxlan": "Vtep",
    "pyvxlan.pcap": "PcapWriter",
    "pyvxlan.topology": "Topology",
    "pyvxlan.scenario": "parse_scenario",
    "pyvxlan.memory": "MemoryVtep",
    "pyvxlan.dpkt_vxlan": "vxlan_of",
    "pyvxlan.strategies": "vxlan_headers",
    "pyvxlan.testing": "check_vtep_control",
    "pyvxlan.sim": "open_lab",
    "pyvxlan.kernel": "open_lab",
    "pyvxlan.udp": "open_vtep",
    "pyvxlan.evpn": "EvpnMachine",
    "pyvxlan.replay": "replay",
    "pyvxlan.conform": "conform",
    "pyvxlan.lab": "Lab",
}


def test_the_documented_import_paths_still_work() -> None:
    """Issue 11 moved modules into layer folders; every path the docs show still imports, and a short
    path (``pyvxlan.pcap``) offers the very objects of the module it stands for."""
    import importlib

    for path, name in PUBLIC_PATHS.items():
        assert hasattr(importlib.import_module(path), name), path
    for short, home in {
        "pcap": "wire.pcap",
        "topology": "lab.topology",
        "scenario": "lab.scenario",
        "memory": "sim.memory",
        "dpkt_vxlan": "wire.dpkt_vxlan",
    }.items():
        a, b = importlib.import_module(f"pyvxlan.{short}"), importlib.import_module(f"pyvxlan.{home}")
        assert a.__all__ == b.__all__, short
        assert all(getattr(a, n) is getattr(b, n) for n in a.__all__), short
