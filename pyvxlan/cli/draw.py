"""``pyvxlan draw``: a topology as a picture, and ``pyvxlan demo --compare --plot``'s chart.

Both are drawn by well-kept libraries, not by hand: the topology by Graphviz (the ``graphviz``
Python package, and Graphviz's ``dot`` program to lay it out), the chart by matplotlib. Both are
the optional extra ``pyvxlan[draw]``; without it the commands say so in one line.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pyvxlan.lab.topology import FdbMode, Topology

if TYPE_CHECKING:
    from pyvxlan.cli.demo import ModeFigures

__all__ = ["plot_compare", "register", "topology_graph", "write_topology"]

_EXTRA = "pip install 'pyvxlan[draw]'"


def _missing(what: str) -> Exception:
    from pyvxlan.cli import UsageError

    return UsageError(f"{what} needs the draw extra: {_EXTRA}")


def topology_graph(topology: Topology) -> Any:
    """A ``graphviz.Graph`` of ``topology``: the underlay, each host with its vxlan devices,
    bridges and guests, and the FDB mode (with the multicast group or head-end peers)."""
    try:
        import graphviz
    except ImportError:
        raise _missing("pyvxlan draw") from None
    u = topology.underlay
    mode = topology.mode
    g = graphviz.Graph("pyvxlan", graph_attr={"rankdir": "TB", "fontname": "Helvetica", "fontsize": "11"})
    g.attr("node", fontname="Helvetica", fontsize="10")
    g.attr(label=f"FDB mode: {mode.value}", labelloc="b")
    g.node("underlay", f"underlay\n{u.subnet}\nmtu {u.mtu}", shape="box", style="rounded,filled", fillcolor="#dde7f0")
    groups = sorted({d.group for h in topology.hosts for d in h.devices if d.group})
    for group in groups:
        if mode is FdbMode.MULTICAST:
            g.node(f"group {group}", f"group {group}", shape="ellipse", style="dashed")
            g.edge(f"group {group}", "underlay", style="dashed")
    for host in topology.hosts:
        with g.subgraph(name=f"cluster_{host.name}") as c:
            c.attr(label=f"{host.name}\n{host.address}", style="rounded", color="#607080")
            c.node(f"{host.name}/eth0", "eth0", shape="box")
            for dev in host.devices:
                cfg = topology.vtep_config(host.name, dev.vni)
                flags = [] if cfg.learning else ["nolearning"]
                flags += [f for f in ("proxy", "l2miss", "l3miss") if getattr(cfg, f)]
                where = f"group {cfg.group}" if cfg.group else (f"remote {cfg.remote}" if cfg.remote else "no group")
                label = f"{dev.name}\nVNI {dev.vni}, {where}" + (f"\n{' '.join(flags)}" if flags else "")
                vx, br = f"{host.name}/{dev.name}", f"{host.name}/{dev.bridge}"
                c.node(vx, label, shape="box", style="filled", fillcolor="#f3e3c3")
                c.node(br, dev.bridge, shape="box", style="filled", fillcolor="#e3f0d8")
                c.edge(br, vx)
                c.edge(vx, f"{host.name}/eth0", style="dotted")
                for guest in topology.guests_on(host.name, dev.vni):
                    c.node(f"guest {guest.name}", f"{guest.name}\n{guest.ip}\n{guest.mac}", shape="oval")
                    c.edge(f"guest {guest.name}", br)
                if mode is FdbMode.MULTICAST and cfg.group:
                    g.edge(vx, f"group {cfg.group}", style="dashed", color="#8090a0")
        g.edge(f"{host.name}/eth0", "underlay", label=host.address, fontsize="9")
    return g


def write_topology(topology: Topology, path: str) -> None:
    """Draw ``topology`` to ``path``; the format is the file's extension (svg, png, pdf)."""
    fmt = os.path.splitext(path)[1].lstrip(".").lower() or "svg"
    if fmt not in ("svg", "png", "pdf"):
        from pyvxlan.cli import UsageError

        raise UsageError(f"-o {path}: the picture must be .svg, .png or .pdf")
    graph = topology_graph(topology)
    import graphviz

    try:
        data: bytes = graph.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        from pyvxlan.cli import UsageError

        raise UsageError("pyvxlan draw needs Graphviz's dot program (apt-get install graphviz)") from None
    with open(path, "wb") as f:
        f.write(data)


def plot_compare(rows: Sequence[ModeFigures], path: str, title: str) -> None:
    """``pyvxlan demo --compare``'s figures as grouped bars, one group per figure, one bar per
    mode, written to ``path`` (svg, png or pdf by its extension)."""
    try:
        import matplotlib
    except ImportError:
        raise _missing("--plot") from None
    matplotlib.use("Agg")  # no display: a file is all that is wanted
    import matplotlib.pyplot as plt

    # Text stays text (searchable, and testable), and the file is the same on every run.
    matplotlib.rcParams["svg.fonttype"] = "none"
    matplotlib.rcParams["svg.hashsalt"] = "pyvxlan"
    figures = [("datagrams", "datagrams"), ("floods", "floods"), ("unicast", "unicast"), ("deliveries", "deliveries")]
    figures += [("learned", "FDB entries learned")]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 1]})
    width = 0.8 / max(1, len(rows))
    for i, row in enumerate(rows):
        xs = [j + i * width for j in range(len(figures))]
        left.bar(xs, [getattr(row, name) for name, _ in figures], width, label=row.mode)
        first = row.first_reply * 1000 if row.first_reply is not None else 0.0
        right.bar([i], [first], 0.6, label=row.mode)
    left.set_xticks([j + width * (len(rows) - 1) / 2 for j in range(len(figures))], [label for _, label in figures])
    left.set_ylabel("count")
    left.legend(title="FDB mode")
    left.set_title("underlay traffic")
    right.set_xticks(range(len(rows)), [r.mode for r in rows])
    right.set_ylabel("ms (virtual)")
    right.set_title("first reply")
    fig.suptitle(title)
    fig.tight_layout()
    try:
        fig.savefig(path, metadata={"Date": None} if path.endswith(".svg") else None)
    finally:
        plt.close(fig)


def register(subparsers: Any) -> None:
    """Add ``draw`` to the ``pyvxlan`` command."""
    p = subparsers.add_parser(
        "draw",
        help="draw a topology or scenario file (needs pyvxlan[draw])",
        description="Draw the underlay, hosts, vxlan devices, bridges, guests and FDB mode of a topology with Graphviz.",
    )
    p.add_argument("file", metavar="FILE.toml", nargs="?", help="a topology or scenario file (docs/scenarios.md)")
    p.add_argument("--demo", action="store_true", help="draw the classic demo instead of a file")
    p.add_argument("--hosts", type=int, metavar="N", help="with --demo: number of hosts (default 2)")
    p.add_argument("--mode", choices=[m.value for m in FdbMode], help="with --demo: the FDB mode (default multicast)")
    p.add_argument("-o", "--output", metavar="FILE", required=True, help="the picture: .svg, .png or .pdf")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from pyvxlan.cli import UsageError

    if args.demo == (args.file is not None):
        raise UsageError("draw: give either FILE.toml or --demo")
    if not args.demo and (args.hosts is not None or args.mode is not None):
        raise UsageError("--hosts and --mode go with --demo only")
    if args.demo:
        from pyvxlan.lab.topology import classic_demo

        topology = classic_demo(args.hosts or 2, FdbMode(args.mode or "multicast"))
    else:
        from pyvxlan.lab.topology import load_topology

        topology = load_topology(args.file)
    write_topology(topology, args.output)
    return 0
