"""``pyvxlan vtep``: a userspace VTEP in the foreground, printing what it learns and drops.

The VTEP is :func:`pyvxlan.udp.open_vtep`: the sans-I/O core on the host's UDP sockets, with a
TAP device (``--tap``, needs CAP_NET_ADMIN) or in-process guests (``--guest``, no privilege) as
its local side. Each notification of the core is one line as it happens (one JSON object with
``--json``); Ctrl-C or SIGTERM closes the sockets, the TAP device and the group membership, then
prints one line and exits with 130 or 143.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pyvxlan.errors import ConfigError

__all__ = ["describe", "register"]


def register(subparsers: Any) -> None:
    """Add ``vtep`` to the ``pyvxlan`` command."""
    p = subparsers.add_parser(
        "vtep",
        help="run a userspace VTEP on UDP sockets that Linux VTEPs talk to",
        description="Run a VXLAN tunnel endpoint in this process (the pyvxlan core on UDP sockets) until "
        "Ctrl-C, printing learned, migrated, expired, miss and drop events as they happen.",
    )
    p.add_argument("--vni", type=int, required=True, metavar="N", help="the VXLAN network identifier")
    p.add_argument("--local", required=True, metavar="IP", help="the underlay address to bind and send from")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--group", metavar="G", help="a multicast group: flood and learn")
    where.add_argument(
        "--remote",
        action="append",
        metavar="IP",
        help="a remote VTEP for flooded frames (repeatable: head-end replication)",
    )
    p.add_argument("--dev", metavar="IF", help="the underlay interface (to join the group on)")
    p.add_argument("--port", type=int, metavar="N", help="the UDP port (default 4789; Linux's default is 8472)")
    local = p.add_mutually_exclusive_group()
    local.add_argument("--tap", metavar="NAME", help="create TAP device NAME as the local side (CAP_NET_ADMIN)")
    local.add_argument(
        "--guest",
        action="append",
        metavar="MAC,IP/PREFIX",
        help="an in-process guest that answers ARP/ND and ping (repeatable; no privilege needed)",
    )
    p.add_argument(
        "--busy-poll",
        type=int,
        default=0,
        metavar="USEC",
        help="with --tap: poll without sleeping for USEC microseconds after each frame (low latency, one busy core)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per event")
    p.set_defaults(func=_main)


def describe(note: object) -> dict[str, object]:
    """A notification as a JSON-ready dict: ``event`` and the notification's fields."""
    from pyvxlan.core.events import Dropped, EntryExpired, EntryLearned, EntryMigrated, L2Miss, L3Miss

    if isinstance(note, EntryLearned):
        return {"event": "learned", "mac": note.mac, "dst": note.dst}
    if isinstance(note, EntryMigrated):
        return {"event": "migrated", "mac": note.mac, "from": note.old_dst, "to": note.new_dst}
    if isinstance(note, EntryExpired):
        return {"event": "expired", "mac": note.mac, "dst": note.dst}
    if isinstance(note, L2Miss):
        return {"event": "l2miss", "mac": note.mac}
    if isinstance(note, L3Miss):
        return {"event": "l3miss", "ip": note.ip}
    if isinstance(note, Dropped):
        return {
            "event": "dropped",
            "direction": note.direction.value,
            "reason": note.reason.value,
            "size": note.size,
            "detail": note.detail,
        }
    raise TypeError(f"not a notification: {note!r}")  # pragma: no cover - the core emits no other


def _text(fields: dict[str, object]) -> str:
    kind = fields["event"]
    if kind == "learned":
        return f"learned {fields['mac']} behind {fields['dst']}"
    if kind == "migrated":
        return f"migrated {fields['mac']} from {fields['from']} to {fields['to']}"
    if kind == "expired":
        return f"expired {fields['mac']} behind {fields['dst']}"
    if kind == "l2miss":
        return f"l2miss {fields['mac']}"
    if kind == "l3miss":
        return f"l3miss {fields['ip']}"
    detail = f" ({fields['detail']})" if fields["detail"] else ""
    return f"dropped {fields['direction']} {fields['reason']} {fields['size']} bytes{detail}"


def _emit(args: argparse.Namespace, t: float, fields: dict[str, object]) -> None:
    if args.json:
        line = json.dumps({"time": round(t, 6), **fields}, separators=(",", ":"))
    else:
        line = f"{t:10.3f}s {_text(fields)}"
    sys.stdout.write(line + "\n")
    sys.stdout.flush()  # as it happens, also into a pipe


def _main(args: argparse.Namespace) -> int:
    import trio

    from pyvxlan.core.config import VtepConfig
    from pyvxlan.udp import GuestSpec, open_vtep

    remotes: list[str] = args.remote or []
    kwargs: dict[str, Any] = {}
    if args.port is not None:
        kwargs["dst_port"] = args.port
    config = VtepConfig(
        vni=args.vni,
        local=args.local,
        group=args.group,
        remote=remotes[0] if remotes else None,
        dev=args.dev,
        **kwargs,
    )
    guests = [GuestSpec.parse(g) for g in args.guest or []]
    if args.tap is not None and not args.tap:
        raise ConfigError("tap", "needs a device name")

    async def run() -> None:
        async with open_vtep(config, tap=args.tap, guests=guests, busy_poll=args.busy_poll) as vtep:
            for extra in remotes[1:]:
                await vtep.fdb_append("00:00:00:00:00:00", extra)
            async with vtep.subscribe() as stream:
                await vtep.up()
                start = trio.current_time()
                side = (
                    f"tap {vtep.tap}"
                    if vtep.tap
                    else ", ".join(f"{g.name} {g.mac} {g.ip}" for g in vtep.guests) or "no local side"
                )
                flood = f"group {config.group}" if config.group else "remote " + " ".join(remotes)
                on = f" on {config.dev}" if config.dev else ""
                if args.json:
                    started = {"event": "started", "vni": config.vni, "local": config.local}
                    started |= {"port": config.dst_port, "flood": flood + on, "side": side}
                    _emit(args, 0.0, started)
                else:
                    print(
                        f"vtep {config.name} vni {config.vni} on {config.local} port {config.dst_port}, "
                        f"flooding to {flood}{on}; local side: {side}",
                        flush=True,
                    )
                async for note in stream:
                    _emit(args, trio.current_time() - start, describe(note))

    trio.run(run)
    return 0
