#!/usr/bin/env python3
"""The README's two commands: ``python3 dev.py demo`` and ``python3 dev.py test``.

Each sets itself up on a fresh machine with only Python 3.11+: a virtual environment in ``.venv``
with pyvxlan installed in editable mode (redone only when ``pyproject.toml`` changes) and, when run
as root, the system packages the conformance tests use (tshark, tcpdump, iproute2, ping).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
STAMP = VENV / ".pyvxlan-installed"
APT_PACKAGES = {
    "tshark": "tshark",
    "tcpdump": "tcpdump",
    "ip": "iproute2",
    "bridge": "iproute2",
    "ping": "iputils-ping",
    "sysctl": "procps",
    # FRR's daemons are not on PATH: which() takes the full path (EVPN tests run bgpd and zebra).
    "/usr/lib/frr/bgpd": "frr",
    "/usr/lib/frr/zebra": "frr",
    "vtysh": "frr",
    # pyvxlan draw lays its pictures out with Graphviz's dot (the graphviz package only calls it).
    "dot": "graphviz",
}


def run(*cmd: str | os.PathLike[str], env: dict[str, str] | None = None) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], cwd=ROOT, check=True, env=env)


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be started by an older python3
        sys.exit(f"pyvxlan needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PY.exists():
        run(sys.executable, "-m", "venv", VENV)
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == want:
        return
    run(PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", f"{ROOT}[dev]")
    STAMP.write_text(want)


def ensure_system_packages() -> None:
    missing = sorted({pkg for tool, pkg in APT_PACKAGES.items() if shutil.which(tool) is None})
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        print(f"note: {', '.join(missing)} not installed (needs root and apt-get); tests that need them skip")
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run("apt-get", "update", "-qq", env=env)
    run("apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing, env=env)


def test(args: list[str]) -> int:
    ensure_venv()
    ensure_system_packages()
    bin_ = VENV / "bin"
    steps: list[list[str | os.PathLike[str]]] = [
        [bin_ / "ruff", "check", "."],
        [bin_ / "mypy"],
        [bin_ / "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(VENV / "site")],
        [PY, "-m", "pytest", *args],
    ]
    for step in steps:
        rc = subprocess.run([str(c) for c in step], cwd=ROOT).returncode  # noqa: PLW1510 - the status is the result
        if rc != 0:
            print(f"FAILED ({rc}): {' '.join(str(c) for c in step)}", flush=True)
            return rc
    return 0


def demo(args: list[str]) -> int:
    ensure_venv()
    return subprocess.run([str(VENV / "bin" / "pyvxlan"), "demo", *args], cwd=ROOT).returncode  # noqa: PLW1510 - the status is the result


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("test", "demo"):
        print("usage: python3 dev.py test [pytest args...] | python3 dev.py demo [demo args...]", file=sys.stderr)
        return 2
    command, rest = sys.argv[1], sys.argv[2:]
    return test(rest) if command == "test" else demo(rest)


if __name__ == "__main__":
    sys.exit(main())
