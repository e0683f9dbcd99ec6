"""FRR in a kernel lab's ``evpn`` mode: the configuration a topology implies, and FRR's daemons.

Every host namespace runs FRR's ``zebra`` and ``bgpd`` with ``advertise-all-vni`` (zebra finds the
vxlan devices and their bridges in the kernel and advertises the MACs and neighbours it sees there);
the underlay namespace runs a route reflector that every host peers with over iBGP (AS
:data:`ASN`). The configuration is a pure function of the topology (:func:`frr_configs`), so
``--print-commands`` prints exactly what the lab writes.

FRR's daemons run per namespace in a pathspace of their own (``-N``: ``/etc/frr/NS`` and
``/var/run/frr/NS``); a lab stops the daemons it started by their pids, and ``pyvxlan lab cleanup``
stops those a crashed lab left (:func:`leftover_daemons`: pid files in a lab's pathspaces whose
process names that pathspace).

>>> from pyvxlan.lab.topology import FdbMode, classic_demo
>>> topo = classic_demo(2, FdbMode.EVPN)
>>> reflector_address(topo)
'198.51.100.254'
>>> print(host_config(topo, "host1"), end="")
frr defaults traditional
hostname host1
service integrated-vtysh-config
router bgp 65000
 bgp router-id 198.51.100.1
 no bgp default ipv4-unicast
 neighbor 198.51.100.254 remote-as internal
 neighbor 198.51.100.254 timers connect 1
 address-family l2vpn evpn
  neighbor 198.51.100.254 activate
  advertise-all-vni
 exit-address-family
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pyvxlan.errors import BackendError, ConfigError
from pyvxlan.lab.topology import Topology

__all__ = [
    "ASN",
    "DAEMONS",
    "FRR_BIN",
    "FRR_ETC",
    "FRR_RUN",
    "FrrDaemon",
    "config_commands",
    "frr_configs",
    "host_config",
    "lab_pathspaces",
    "leftover_daemons",
    "load_config",
    "reflector_address",
    "reflector_config",
    "remove_pathspace",
    "require_frr",
    "start_daemon",
    "start_commands",
    "stop_commands",
    "stop_daemons",
    "write_config",
]

#: The iBGP autonomous system every host and the route reflector share.
ASN: Final = 65000
#: The daemons started in every namespace, in start order (bgpd asks zebra for the kernel's VNIs).
DAEMONS: Final = ("zebra", "bgpd")
#: Where Debian's frr package installs the daemons.
FRR_BIN: Final = "/usr/lib/frr"
#: Each namespace's configuration directory is ``FRR_ETC/NS`` (``-N NS``), its sockets and pid
#: files ``FRR_RUN/NS``.
FRR_ETC: Final = "/etc/frr"
FRR_RUN: Final = "/var/run/frr"
# zebra's netlink receive buffer: the size FRR's own systemd unit passes, so a burst of FDB
# notifications is not lost.
_ZEBRA_BUFFER: Final = "90000000"
# How long a daemon may take to write its pid file, and to exit after SIGTERM.
_WAIT: Final = 10.0


def _check_ipv4(topology: Topology) -> None:
    if topology.underlay.ip_version != 4:
        # zebra 8.4 takes a vxlan device's VTEP address as IPv4 only.
        raise ConfigError("underlay", "evpn mode in a kernel lab needs an IPv4 underlay (FRR's VTEPs are IPv4)")


def reflector_address(topology: Topology) -> str:
    """The route reflector's address on the underlay bridge: the highest address of the underlay
    subnet that no host has."""
    _check_ipv4(topology)
    taken = {h.address for h in topology.hosts}
    net = topology.underlay.network
    for k in range(net.num_addresses - 2, 0, -1):
        candidate = str(net[k])
        if candidate not in taken:
            return candidate
    raise ConfigError("underlay", f"no address left in {net} for the route reflector")


def _header(name: str) -> str:
    return f"frr defaults traditional\nhostname {name}\nservice integrated-vtysh-config\n"


def host_config(topology: Topology, host: str) -> str:
    """``frr.conf`` of ``host``: one iBGP session to the reflector, EVPN for every local VNI."""
    address = topology.host(host).address
    rr = reflector_address(topology)
    return (
        _header(topology.host(host).name)
        + f"router bgp {ASN}\n"
        + f" bgp router-id {address}\n"
        + " no bgp default ipv4-unicast\n"
        + f" neighbor {rr} remote-as internal\n"
        # The reflector may start listening a moment after the host's first attempt; FRR's
        # default retry comes 120 s later.
        + f" neighbor {rr} timers connect 1\n"
        + " address-family l2vpn evpn\n"
        + f"  neighbor {rr} activate\n"
        + "  advertise-all-vni\n"
        + " exit-address-family\n"
    )


def reflector_config(topology: Topology) -> str:
    """``frr.conf`` of the route reflector: every address of the underlay may peer (a listen range)."""
    rr = reflector_address(topology)
    return (
        _header("reflector")
        + f"router bgp {ASN}\n"
        + f" bgp router-id {rr}\n"
        + " no bgp default ipv4-unicast\n"
        + " neighbor vteps peer-group\n"
        + " neighbor vteps remote-as internal\n"
        + f" bgp listen range {topology.underlay.subnet} peer-group vteps\n"
        + " address-family l2vpn evpn\n"
        + "  neighbor vteps activate\n"
        + "  neighbor vteps route-reflector-client\n"
        + " exit-address-family\n"
    )


def frr_configs(topology: Topology) -> dict[str, str]:
    """Every ``frr.conf`` of the lab: the reflector's under ``"underlay"``, then each host's."""
    configs = {"underlay": reflector_config(topology)}
    for host in topology.hosts:
        configs[host.name] = host_config(topology, host.name)
    return configs


# --- the script's lines ---------------------------------------------------------------------------


def config_commands(ns: str, text: str) -> list[str]:
    """The shell lines that write ``text`` as namespace ``ns``'s configuration."""
    etc, run = f"{FRR_ETC}/{ns}", f"{FRR_RUN}/{ns}"
    return [
        f"mkdir -p {etc} {run} && chown frr:frr {etc} {run}",
        f"cat > {etc}/frr.conf <<'EOF'\n{text}EOF",
        f"echo 'service integrated-vtysh-config' > {etc}/vtysh.conf",
    ]


def _daemon_argv(ns: str, daemon: str) -> list[str]:
    extra = ["-s", _ZEBRA_BUFFER] if daemon == "zebra" else []
    return ["ip", "netns", "exec", ns, f"{FRR_BIN}/{daemon}", "-d", "-N", ns, "-A", "127.0.0.1", *extra]


def start_commands(ns: str) -> list[str]:
    """The lines that start ``ns``'s daemons and load its configuration."""
    return [" ".join(_daemon_argv(ns, d)) for d in DAEMONS] + [f"vtysh -N {ns} -b"]


def stop_commands(ns: str) -> list[str]:
    """The lines that stop ``ns``'s daemons and remove its pathspace."""
    pids = " ".join(f"$(cat {FRR_RUN}/{ns}/{d}.pid)" for d in reversed(DAEMONS))
    return [f"kill {pids}", f"rm -rf {FRR_ETC}/{ns} {FRR_RUN}/{ns}"]


# --- running FRR -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FrrDaemon:
    """One daemon a lab started: its namespace (and pathspace), name and pid."""

    ns: str
    daemon: str
    pid: int


def require_frr() -> None:
    """:class:`~pyvxlan.errors.ConfigError` unless FRR's daemons and vtysh are installed."""
    missing = [d for d in DAEMONS if not os.access(f"{FRR_BIN}/{d}", os.X_OK)]
    if missing or shutil.which("vtysh") is None:
        raise ConfigError(
            "mode", "evpn mode in a kernel lab needs FRR (apt-get install frr; python dev.py installs it)"
        )


def _run(argv: list[str], command: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackendError(0, command, (done.stderr or done.stdout).strip() or f"exit status {done.returncode}")


def write_config(ns: str, text: str) -> None:
    """Make ``ns``'s pathspace and write ``text`` as its ``frr.conf`` (owned by user frr)."""
    etc, run = Path(FRR_ETC) / ns, Path(FRR_RUN) / ns
    for d in (etc, run):
        d.mkdir(parents=True, exist_ok=True)
        shutil.chown(d, "frr", "frr")
    (etc / "frr.conf").write_text(text)
    (etc / "vtysh.conf").write_text("service integrated-vtysh-config\n")
    for f in etc.iterdir():
        shutil.chown(f, "frr", "frr")


def _pid_file(ns: str, daemon: str) -> Path:
    return Path(FRR_RUN) / ns / f"{daemon}.pid"


def start_daemon(ns: str, daemon: str) -> FrrDaemon:
    """Start ``daemon`` in namespace ``ns`` (its own pathspace) and return it with its pid."""
    argv = _daemon_argv(ns, daemon)
    _run(argv, " ".join(argv))
    deadline = time.monotonic() + _WAIT
    while True:
        try:
            return FrrDaemon(ns, daemon, int(_pid_file(ns, daemon).read_text()))
        except (OSError, ValueError):
            if time.monotonic() > deadline:
                raise BackendError(0, " ".join(argv), "the daemon wrote no pid file") from None
            time.sleep(0.02)


def load_config(ns: str) -> None:
    """``vtysh -N NS -b``: the daemons read the integrated ``frr.conf`` (they do not on their own
    while ``/etc/frr/frr.conf`` exists)."""
    _run(["vtysh", "-N", ns, "-b"], f"vtysh -N {ns} -b")


def _alive(pid: int) -> bool:
    # A daemon is the child of init (it forks away); where init does not reap at once (a
    # container's), an exited daemon lingers as a zombie, which signal 0 still finds.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split(" ", 1)[0] != "Z"


def stop_daemons(daemons: Iterable[FrrDaemon]) -> None:
    """SIGTERM to every one at once (each takes about 2 s to shut down), then SIGKILL to those
    that have not exited within a few seconds."""
    pids = []
    for daemon in daemons:
        with contextlib.suppress(ProcessLookupError):
            os.kill(daemon.pid, signal.SIGTERM)
            pids.append(daemon.pid)
    deadline = time.monotonic() + _WAIT
    while pids := [pid for pid in pids if _alive(pid)]:
        if time.monotonic() > deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.02)


def remove_pathspace(ns: str) -> None:
    """Remove ``ns``'s configuration directory and run directory."""
    shutil.rmtree(Path(FRR_ETC) / ns, ignore_errors=True)
    shutil.rmtree(Path(FRR_RUN) / ns, ignore_errors=True)


def lab_pathspaces(prefix: str) -> list[str]:
    """The namespaces of lab ``prefix`` that have an FRR pathspace (configuration or run directory)."""
    found: set[str] = set()
    for base in (Path(FRR_ETC), Path(FRR_RUN)):
        if base.is_dir():
            found.update(d.name for d in base.glob(f"{prefix}-*") if d.is_dir())
    return sorted(found)


def leftover_daemons(prefix: str) -> list[FrrDaemon]:
    """The daemons still running in lab ``prefix``'s pathspaces: a pid file there whose process
    was started with ``-N`` that pathspace (a reused pid is someone else's and is left alone)."""
    found = []
    for ns in lab_pathspaces(prefix):
        for daemon in DAEMONS:
            try:
                pid = int(_pid_file(ns, daemon).read_text())
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except (OSError, ValueError):
                continue
            if b"-N" in argv and ns.encode() in argv:
                found.append(FrrDaemon(ns, daemon, pid))
    return found
