"""``pyvxlan replay CAPTURE``: what every VTEP learned, and when, from a capture of the underlay.

The command only formats what :class:`pyvxlan.replay.Replay` yields: the VTEPs it models (with
what it assumed about each), the timeline of table changes, and the findings. ``--at`` prints the
tables at one moment instead of the timeline, ``--mac`` keeps one MAC's history, ``--json``
writes one JSON object per line (the schema is in docs/replay.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from pyvxlan.cli import UsageError
from pyvxlan.cli.argtypes import udp_port
from pyvxlan.cli.output import OutputError, checked_writer, flush_checked, output_failed
from pyvxlan.errors import ConfigError, DecodeError
from pyvxlan.replay import (
    DEFAULT_FLAP_WINDOW,
    Finding,
    ModelVtep,
    Replay,
    TableChange,
    VtepSpec,
    format_time,
    parse_time,
)
from pyvxlan.wire.frame import LINUX_VXLAN_PORT, VXLAN_PORT

__all__ = ["register", "run"]

_PROG = "pyvxlan replay"


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seconds {text!r}: not a number") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"invalid seconds {text!r}: must be >= 0 and finite")
    return value


def register(subparsers: Any) -> None:
    """Add ``replay`` to the ``pyvxlan`` command."""
    p = subparsers.add_parser(
        "replay",
        help="replay a capture through model VTEPs: what each learned, when, and what looks wrong",
        description="Replay the VXLAN datagrams of a pcap or pcapng capture of underlay traffic through a "
        "model VTEP per (receiving address, VNI), with the capture's timestamps: a timeline of learned, "
        "migrated and expired entries, then findings naming the frames they rest on.",
    )
    p.add_argument("capture", metavar="CAPTURE", help="a pcap or pcapng capture of underlay traffic")
    p.add_argument(
        "--port",
        action="append",
        type=udp_port,
        metavar="N",
        help=f"a UDP destination port carrying VXLAN (repeatable; default {VXLAN_PORT} and {LINUX_VXLAN_PORT})",
    )
    p.add_argument(
        "--vtep",
        action="append",
        default=[],
        metavar="ADDR[,vni=N,port=N,ageing=S,learning=on|off,group=G,static=MAC@DST]",
        help="what the capture cannot show about a VTEP (repeatable)",
    )
    p.add_argument("--at", metavar="TIME", help="print every VTEP's table at TIME (HH:MM:SS[.fff], +S or S)")
    p.add_argument("--mac", metavar="MAC", help="only this MAC's history, everywhere")
    p.add_argument("--json", action="store_true", help="one JSON object per line (see docs/replay.md)")
    p.add_argument("-v", "--verbose", action="store_true", help="also every refresh of an entry (noisy)")
    p.add_argument(
        "--flap-window",
        type=_seconds,
        default=DEFAULT_FLAP_WINDOW,
        metavar="S",
        help=f"a MAC back behind a VTEP it left less than S seconds ago is a duplicate (default {DEFAULT_FLAP_WINDOW:g})",
    )
    p.set_defaults(func=_main)


def _model_json(m: ModelVtep) -> dict[str, Any]:
    return {
        "type": "vtep",
        "address": m.address,
        "vni": m.vni,
        "port": m.port,
        "ageing": m.ageing,
        "learning": m.learning,
        "group": m.group,
        "remotes": list(m.remotes),
        "static": [list(p) for p in m.static],
        "assumed": list(m.assumed),
    }


def _event_json(e: TableChange | Finding) -> dict[str, Any]:
    if isinstance(e, TableChange):
        return {
            "type": "change",
            "time": e.time,
            "vtep": e.vtep,
            "vni": e.vni,
            "kind": e.kind.value,
            "mac": e.mac,
            "dst": e.dst,
            "old_dst": e.old_dst,
            "frame": e.frame,
        }
    return {
        "type": "finding",
        "time": e.time,
        "kind": e.kind.value,
        "frames": list(e.frames),
        "count": e.count,
        "vni": e.vni,
        "mac": e.mac,
        "vtep": e.vtep,
        "detail": e.detail,
    }


def run(
    capture: str,
    out: Callable[[str], None],
    *,
    ports: list[int] | None = None,
    vteps: list[VtepSpec] | None = None,
    at: str | None = None,
    mac: str | None = None,
    as_json: bool = False,
    verbose: bool = False,
    flap_window: float = DEFAULT_FLAP_WINDOW,
) -> Replay:
    """Replay ``capture`` and write the report through ``out``; returns the finished replay."""
    r = Replay(
        capture,
        ports=ports or (VXLAN_PORT, LINUX_VXLAN_PORT),
        vteps=vteps or (),
        flap_window=flap_window,
        refreshed=verbose,
    )
    until = parse_time(at, r.first_time) if at is not None else None
    lines: list[str] = []
    for m in r.models:
        if as_json:
            lines.append(json.dumps(_model_json(m)))
        else:
            group = f" group {m.group}" if m.group else ""
            lines.append(f"# vtep {m.address} vni {m.vni} port {m.port}{group}; assumed: {'; '.join(m.assumed)}")
    out("".join(line + "\n" for line in lines))
    lines.clear()
    findings: list[Finding] = []
    for e in r.events(until=until):
        if mac is not None and e.mac != mac:
            continue
        if isinstance(e, Finding):
            findings.append(e)
            continue
        if at is not None and mac is None:
            continue  # --at: the tables, not the way there (with --mac: its history up to then)
        lines.append(json.dumps(_event_json(e)) if as_json else str(e))
        if len(lines) >= 4096:
            out("".join(line + "\n" for line in lines))
            lines.clear()
    for f in findings:
        lines.append(json.dumps(_event_json(f)) if as_json else str(f))
    if until is not None:
        for (address, vni), table in r.tables().items():
            entries = [en for en in table if mac is None or en.mac == mac]
            if as_json:
                rows = [
                    {"mac": en.mac, "dst": en.dst, "state": en.state.value or "reachable", "updated": en.updated}
                    for en in entries
                ]
                lines.append(json.dumps({"type": "fdb", "time": until, "vtep": address, "vni": vni, "entries": rows}))
            else:
                lines.append(f"# {format_time(until)} {address} vni {vni}")
                lines.extend(en.bridge_line(f"vxlan{vni}") for en in entries)
    s = r.stats
    if as_json:
        lines.append(json.dumps({"type": "totals", "packets": s.packets, "findings": len(findings)}))
    else:
        lines.append(f"# {s.packets} packets, {len(r.models)} vteps, {len(findings)} findings")
    out("".join(line + "\n" for line in lines))
    return r


def _vtep_spec(text: str) -> VtepSpec:
    try:
        return VtepSpec.parse(text)
    except ConfigError as exc:
        raise UsageError(f"--vtep {text!r}: {exc}", prog=_PROG) from None


def _main(args: argparse.Namespace) -> int:
    specs = [_vtep_spec(t) for t in args.vtep]
    mac = args.mac
    if mac is not None:
        from pyvxlan.core.entries import FdbEntry

        try:
            mac = FdbEntry(mac, "0.0.0.0").mac
        except ConfigError as exc:
            raise UsageError(f"--mac {args.mac!r}: {exc}", prog=_PROG) from None
    write = checked_writer(sys.stdout)
    path = args.capture
    try:
        try:
            run(
                path,
                write,
                ports=args.port,
                vteps=specs,
                at=args.at,
                mac=mac,
                as_json=args.json,
                verbose=args.verbose,
                flap_window=args.flap_window,
            )
        finally:
            flush_checked(sys.stdout)
    except OutputError as exc:
        return output_failed(exc)
    except DecodeError as exc:
        raise UsageError(f"{path}: {exc}", prog=_PROG) from None
    except ConfigError as exc:
        what = f"--at {args.at!r}" if exc.field == "at" else path
        raise UsageError(f"{what}: {exc}", prog=_PROG) from None
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file", prog=_PROG) from None
    except OSError as exc:
        if exc.filename is None or isinstance(exc, OutputError):
            raise
        reason = (exc.strerror or str(exc)).lower()
        raise UsageError(f"{path}: {reason}", prog=_PROG) from None
    return 0
