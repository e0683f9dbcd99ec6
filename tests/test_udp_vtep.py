"""The UDP driver without privilege: loopback sockets, in-process guests, the VtepControl checker.

Every VTEP here binds a 127.0.9.x address (IP_FREEBIND needs no privilege, and loopback answers
for all of 127/8) on a port of its own, so the tests do not meet a vxlan device or another test.
"""

from __future__ import annotations

import errno
import itertools
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest
import trio

from pyvxlan import BackendError, ConfigError, LabKeyError, SendDatagram, Vtep, VtepConfig, VtepControl
from pyvxlan.core.events import EntryExpired, EntryLearned, Notification
from pyvxlan.testing import check_vtep_control
from pyvxlan.udp import DriverError, DriverStats, GuestSpec, UdpVtep, open_vtep
from pyvxlan.wire.packets import icmp_echo_frame

A, B = "127.0.9.1", "127.0.9.2"
MAC1, MAC2 = "02:00:00:00:09:01", "02:00:00:00:09:02"
IP_RECVTTL = 12  # include/uapi/linux/in.h; Python's socket module does not name it
_R = TypeVar("_R")
_ports = itertools.count(47900 + (os.getpid() % 200) * 8)


def _port() -> int:
    return next(_ports)


def _pair(port: int, **kw: object) -> tuple[VtepConfig, VtepConfig]:
    a = VtepConfig(vni=10, local=A, remote=B, dst_port=port, **kw)  # type: ignore[arg-type]
    b = VtepConfig(vni=10, local=B, remote=A, dst_port=port, **kw)  # type: ignore[arg-type]
    return a, b


async def _collect(vtep: VtepControl, into: list[Notification], *, task_status: trio.TaskStatus[None]) -> None:
    async with vtep.subscribe() as stream:
        task_status.started()
        async for note in stream:
            into.append(note)


def test_udp_vtep_is_a_vtep_control_and_passes_the_checker() -> None:
    async def main() -> None:
        async with open_vtep(VtepConfig(vni=1, local=A, dst_port=_port())) as vtep:
            control: VtepControl = vtep  # mypy checks the Protocol here
            assert isinstance(control, VtepControl)
        await check_vtep_control(open_vtep, dev="lo")

    trio.run(main)


def test_guests_ping_each_other_through_two_userspace_vteps_and_learn() -> None:
    notes: list[Notification] = []

    async def main() -> None:
        a, b = _pair(_port())
        async with (
            open_vtep(a, guests=[GuestSpec(MAC1, "203.0.113.1/24")], up=True) as va,
            open_vtep(b, guests=[f"{MAC2},203.0.113.2/24"], up=True) as vb,
            trio.open_nursery() as nursery,
        ):
            await nursery.start(_collect, va, notes)
            result = await va.guest("guest1").ping("203.0.113.2", count=3, interval=0.01)
            assert (result.sent, result.received) == (3, 3)
            assert all(0 < rtt < 0.5 for rtt in result.rtts)
            back = await vb.guest("guest1").ping("203.0.113.1", count=1)
            assert back.received == 1
            learned = {(e.mac, e.dst) for e in await va.fdb() if e.mac != "00:00:00:00:00:00"}
            assert learned == {(MAC2, B)}
            assert va.guest("guest1").arp_cache[bytes([203, 0, 113, 2])][0] == bytes.fromhex("020000000902")
            stats = va.stats()
            assert stats.tx_datagrams >= 4 and stats.rx_datagrams >= 4 and stats.tx_errors == 0
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert EntryLearned(MAC2, B) in notes


def test_guest_udp_sockets_carry_datagrams_across() -> None:
    async def main() -> None:
        a, b = _pair(_port())
        async with (
            open_vtep(a, guests=[f"{MAC1},203.0.113.1/24"], up=True) as va,
            open_vtep(b, guests=[f"{MAC2},203.0.113.2/24"], up=True) as vb,
        ):
            server = vb.guest("guest1").udp_socket(7000)
            va.guest("guest1").udp_socket(7001).send(b"hello", ("203.0.113.2", 7000))
            with trio.fail_after(5):
                payload, sender = await server.receive()
            assert (payload, sender) == (b"hello", ("203.0.113.1", 7001))

    trio.run(main)


def test_multicast_flood_and_learn_on_a_group_joined_on_dev() -> None:
    """Both VTEPs join 239.1.1.1 on lo; the first ARP floods to the group, the reply is unicast
    to the learned VTEP; the host's loopback of our own multicast is not handed to the core."""

    async def main() -> None:
        port = _port()
        a = VtepConfig(vni=10, local=A, group="239.1.1.1", dev="lo", dst_port=port)
        b = VtepConfig(vni=10, local=B, group="239.1.1.1", dev="lo", dst_port=port)
        async with (
            open_vtep(a, guests=[f"{MAC1},203.0.113.1/24"], up=True) as va,
            open_vtep(b, guests=[f"{MAC2},203.0.113.2/24"], up=True) as vb,
        ):
            result = await va.guest("guest1").ping("203.0.113.2", count=2, interval=0.01)
            assert result.received == 2
            assert {(e.mac, e.dst) for e in await vb.fdb()} >= {(MAC1, A)}
            assert {(e.mac, e.dst) for e in await va.fdb()} >= {(MAC2, B)}
            assert va.stats().rx_own >= 1  # its own ARP broadcast, looped back by the host

    trio.run(main)


def _receiver(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
    sock.bind((B, port))
    return sock


def test_datagrams_carry_the_cores_source_port_ttl_tos_and_payload() -> None:
    """What a peer receives is the core's SendDatagram: a different source port per flow (the
    core's flow hash, as Linux's udp_flow_src_port), the TTL and the TOS with the inner ECN."""
    port = _port()
    config = VtepConfig(vni=10, local=A, remote=B, dst_port=port, ttl=17, tos=0x28)
    frames = [
        icmp_echo_frame(
            bytes.fromhex("020000000901"),
            bytes.fromhex("020000000902"),
            bytes([203, 0, 113, 1]),
            bytes([203, 0, 113, n]),
            reply=False,
            ident=n,
            seq=0,
            data=b"x",
        )
        for n in (2, 3, 4)
    ]
    model = Vtep(config)
    model.up(0.0)
    want = []
    for frame in frames:
        model.transmit(frame, 0.0)
        want += [(o.src_port, o.ttl, o.tos, o.payload) for o in model.take_outputs() if isinstance(o, SendDatagram)]
    assert len({w[0] for w in want}) == 3  # three flows, three source ports

    async def main() -> list[tuple[int, int, int, bytes]]:
        got = []
        with _receiver(port) as peer:
            async with open_vtep(config, up=True) as vtep:
                for frame in frames:
                    await vtep.send_frame(frame)
                for _ in frames:
                    with trio.fail_after(5):
                        await trio.lowlevel.wait_readable(peer)
                    data, anc, _flags, addr = peer.recvmsg(65535, 64)
                    fields = {t: d for _lvl, t, d in anc}
                    ttl = struct.unpack("i", fields[socket.IP_TTL])[0]
                    got.append((addr[1], ttl, fields[socket.IP_TOS][0], data))
                assert vtep.source_ports == sorted({config.dst_port, *(w[0] for w in want)})
        return got

    assert trio.run(main) == want


def test_a_port_in_use_is_one_error_naming_the_address() -> None:
    port = _port()

    async def main() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
            squatter.bind((A, port))
            with pytest.raises(DriverError) as info:
                async with open_vtep(VtepConfig(vni=10, local=A, dst_port=port)):
                    pass
            assert (info.value.errno, str(info.value)) == (errno.EADDRINUSE, f"vxlan10: UDP {A}:{port} is in use")

    trio.run(main)


def test_a_missing_underlay_device_is_a_config_error() -> None:
    async def main() -> None:
        config = VtepConfig(vni=10, local=A, group="239.1.1.1", dev="pvh9nope", dst_port=_port())
        with pytest.raises(ConfigError, match=r"^dev: no interface named 'pvh9nope'$"):
            async with open_vtep(config):
                pass

    trio.run(main)


def test_a_missing_namespace_is_a_config_error() -> None:
    async def main() -> None:
        with pytest.raises(ConfigError, match=r"^netns: no network namespace named 'pvh9-none'$"):
            async with open_vtep(VtepConfig(vni=10, local=A, dst_port=_port()), netns="pvh9-none"):
                pass

    trio.run(main)


def _memberships(group_hex: str = "010101EF") -> int:
    with open("/proc/net/igmp") as f:
        return sum(1 for line in f if group_hex in line)


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize("how", ["exit", "cancel", "error"])
def test_closing_leaves_no_socket_and_no_membership(how: str) -> None:
    port = _port()
    before = _memberships()
    used: list[int] = []

    async def run(vtep_box: list[UdpVtep]) -> None:
        a = VtepConfig(vni=10, local=A, group="239.1.1.1", dev="lo", dst_port=port)
        async with open_vtep(a, guests=[f"{MAC1},203.0.113.1/24"], up=True) as vtep:
            vtep_box.append(vtep)
            await vtep.guest("guest1").ping("203.0.113.9", count=1, timeout=0.05)  # floods to the group
            used.extend(vtep.source_ports)
            assert _memberships() == before + 1
            if how == "cancel":
                await trio.sleep_forever()
            if how == "error":
                raise KeyError("boom")

    async def main() -> None:
        box: list[UdpVtep] = []
        if how == "cancel":
            with trio.move_on_after(0.5):
                await run(box)
        elif how == "error":
            with pytest.raises(KeyError):
                await run(box)
        else:
            await run(box)

    trio.run(main)
    assert _memberships() == before
    assert len(used) >= 2 and all(_bindable(A, p) for p in used)
    assert _bindable("239.1.1.1", port)


def test_learned_entries_age_out_on_the_cores_timer() -> None:
    notes: list[Notification] = []

    async def main() -> None:
        a, b = _pair(_port(), ageing=0.3)
        async with (
            open_vtep(a, guests=[f"{MAC1},203.0.113.1/24"], up=True) as va,
            open_vtep(b, guests=[f"{MAC2},203.0.113.2/24"], up=True),
            trio.open_nursery() as nursery,
        ):
            await nursery.start(_collect, va, notes)
            assert (await va.guest("guest1").ping("203.0.113.2", interval=0.0)).received == 1
            with trio.fail_after(3):
                while EntryExpired(MAC2, B) not in notes:
                    await trio.sleep(0.05)
            assert [e.mac for e in await va.fdb()] == ["00:00:00:00:00:00"]
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_frames_without_a_local_side_are_read_with_receive_frame() -> None:
    async def main() -> None:
        a, b = _pair(_port())
        frame = bytes.fromhex("020000000902020000000901") + b"\x88\xb5" + b"pyvxlan"
        async with open_vtep(a, up=True) as va, open_vtep(b, up=True) as vb:
            await va.send_frame(frame)
            with trio.fail_after(5):
                assert await vb.receive_frame() == frame

    trio.run(main)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("02:00:00:00:00:01", "guest: '02:00:00:00:00:01' is not MAC,IP/PREFIX"),
        ("02:00:00:00:00:01,203.0.113.1", "guest: '203.0.113.1' has no prefix length (203.0.113.2/24)"),
        ("02:00:00:00:00:01,nope/24", "guest: 'nope/24' is not an address with a prefix (203.0.113.2/24)"),
    ],
)
def test_guest_specs_are_checked(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        GuestSpec.parse(text)
    assert str(info.value) == message


def _start_cli(*args: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-c", "import sys; from pyvxlan.cli import main; sys.exit(main())", "vtep", *args]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc


@pytest.mark.parametrize(
    ("signum", "status", "line"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_the_command_prints_events_as_json_lines_and_ends_cleanly_on_a_signal(
    signum: int, status: int, line: str
) -> None:
    port = _port()
    proc = _start_cli(
        "--vni", "10", "--local", B, "--remote", A, "--port", str(port), "--guest", f"{MAC2},203.0.113.2/24", "--json"
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    try:
        started = json.loads(proc.stdout.readline())
        assert started == {
            "time": 0.0,
            "event": "started",
            "vni": 10,
            "local": B,
            "port": port,
            "flood": f"remote {A}",
            "side": f"guest1 {MAC2} 203.0.113.2",
        }

        async def main() -> None:
            a = VtepConfig(vni=10, local=A, remote=B, dst_port=port)
            async with open_vtep(a, guests=[f"{MAC1},203.0.113.1/24"], up=True) as va:
                assert (await va.guest("guest1").ping("203.0.113.2", count=2, interval=0.05)).received == 2

        trio.run(main)
        event = json.loads(proc.stdout.readline())
        assert {k: v for k, v in event.items() if k != "time"} == {"event": "learned", "mac": MAC1, "dst": A}
    finally:
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=10)
    assert (proc.returncode, err) == (status, f"pyvxlan: {line}\n")
    assert _bindable(B, port)


def test_the_command_says_in_one_line_that_a_port_is_in_use() -> None:
    port = _port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind((A, port))
        proc = _start_cli("--vni", "10", "--local", A, "--remote", B, "--port", str(port))
        out, err = proc.communicate(timeout=20)
    assert (proc.returncode, out, err) == (2, "", f"pyvxlan: error: vxlan10: UDP {A}:{port} is in use\n")


def test_a_tap_device_without_cap_net_admin_is_one_privilege_error() -> None:
    """As root the command runs with an empty capability set (setpriv), as an ordinary user runs."""
    argv = [
        sys.executable, "-c", "import sys; from pyvxlan.cli import main; sys.exit(main())",
        "vtep", "--vni", "10", "--local", A, "--remote", B, "--port", str(_port()), "--tap", "pvh9tapx",
    ]  # fmt: skip
    if os.geteuid() == 0:
        argv = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", *argv]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        2,
        "",
        "pyvxlan: error: tap: creating TAP device 'pvh9tapx' needs CAP_NET_ADMIN\n",
    )


def test_the_command_prints_one_text_line_per_event_without_json() -> None:
    port = _port()
    proc = _start_cli(
        "--vni", "10", "--local", B, "--remote", A, "--port", str(port), "--guest", f"{MAC2},203.0.113.2/24"
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline() == (
            f"vtep vxlan10 vni 10 on {B} port {port}, flooding to remote {A}; local side: guest1 {MAC2} 203.0.113.2\n"
        )

        async def main() -> None:
            a = VtepConfig(vni=10, local=A, remote=B, dst_port=port)
            async with open_vtep(a, guests=[f"{MAC1},203.0.113.1/24"], up=True) as va:
                assert (await va.guest("guest1").ping("203.0.113.2", count=1)).received == 1
                # A frame the command's VTEP cannot deliver: a reserved bit set in its header.
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
                    raw.bind((A, 0))
                    raw.sendto(bytes.fromhex("0800000100000a00") + bytes(14), (B, port))

        trio.run(main)
        learned = proc.stdout.readline()
        dropped = proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    assert learned.split("s ", 1)[1] == f"learned {MAC1} behind {A}\n"
    assert dropped.split("s ", 1)[1] == "dropped rx reserved_bits 22 bytes (header 0800000100000a00)\n"


def test_a_source_port_held_elsewhere_falls_back_to_the_device_port_and_old_flows_are_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When another program holds a flow's source port, the datagram still goes (from the device's
    port, counted); beyond MAX_SOURCE_SOCKETS the oldest flow's socket is closed, never the
    device's own socket that a fallen-back flow shares."""
    from pyvxlan.udp import driver

    monkeypatch.setattr(driver, "MAX_SOURCE_SOCKETS", 3)
    port = _port()
    config = VtepConfig(vni=10, local=A, remote=B, dst_port=port)
    frames = [
        icmp_echo_frame(
            bytes.fromhex("020000000901"),
            bytes.fromhex("020000000902"),
            bytes([203, 0, 113, 1]),
            bytes([203, 0, 113, n]),
            reply=False,
            ident=n,
            seq=0,
            data=b"x",
        )
        for n in (2, 3, 4, 5)
    ]
    model = Vtep(config)
    model.up(0.0)
    sports = []
    for frame in frames:
        model.transmit(frame, 0.0)
        sports += [o.src_port for o in model.take_outputs() if isinstance(o, SendDatagram)]
    assert len(set(sports)) == 4

    async def main() -> list[int]:
        seen = []
        with _receiver(port) as peer, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
            squatter.bind((A, sports[0]))
            async with open_vtep(config, up=True) as vtep:
                for frame in [*frames, frames[0]]:
                    await vtep.send_frame(frame)
                    with trio.fail_after(5):
                        await trio.lowlevel.wait_readable(peer)
                    seen.append(peer.recvfrom(65535)[1][1])
                # The first flow's fallback was evicted too, so its return tries its port again.
                assert vtep.stats().source_port_fallbacks == 2
                assert vtep.source_ports == sorted([port, sports[3], sports[0]])
                assert _bindable(A, sports[1]) and _bindable(A, sports[2])  # evicted: closed
        return seen

    assert trio.run(main) == [port, *sports[1:], port]


def _echo(src_mac: str, dst_mac: str, n: int) -> bytes:
    return icmp_echo_frame(
        bytes.fromhex(src_mac.replace(":", "")),
        bytes.fromhex(dst_mac.replace(":", "")),
        bytes([203, 0, 113, 1]),
        bytes([203, 0, 113, 2]),
        reply=False,
        ident=n,
        seq=n,
        data=b"x",
    )


def _fake_tap_vtep(config: VtepConfig, busy_poll: int = 0) -> tuple[UdpVtep, socket.socket]:
    """A UdpVtep whose TAP is one end of a packet socketpair (frames as a TAP passes them); the
    other end is returned, as the host's side of the TAP. Nothing is started."""
    vtep = UdpVtep(config, busy_poll=busy_poll)
    vtep._open(None, [])
    host, tap = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    tap.setblocking(False)
    vtep._tap = tap.detach()  # the VTEP closes it
    return vtep, host


@asynccontextmanager
async def _fake_tap_running(
    config: VtepConfig, *, start: bool = False, busy_poll: int = 0
) -> AsyncIterator[tuple[UdpVtep, socket.socket, socket.socket, trio.Nursery]]:
    """A :func:`_fake_tap_vtep` (down) in a nursery, with a peer bound to B on the config's port:
    ``(vtep, host, peer, nursery)``. With ``start`` the driver's tasks (the data thread) are
    started, else only given the nursery; the tasks are cancelled and the VTEP closed after."""
    vtep, host = _fake_tap_vtep(config, busy_poll)
    with _receiver(config.dst_port) as peer, host:
        try:
            async with trio.open_nursery() as nursery:
                if start:
                    vtep._start(nursery)
                else:
                    vtep._nursery = nursery
                yield vtep, host, peer, nursery
                nursery.cancel_scope.cancel()
        finally:
            vtep._close()


def test_a_tap_burst_goes_through_transmit_many_and_out_as_the_cores_datagrams() -> None:
    """Frames read from the TAP in one burst leave as the datagrams transmit would have made, in
    order, each flow from its own source port."""
    port = _port()
    config = VtepConfig(vni=10, local=A, remote=B, dst_port=port)
    frames = [_echo(MAC1, MAC2, n) for n in range(6)]
    model = Vtep(config)
    model.up(0.0)
    for frame in frames:
        model.transmit(frame, 0.0)
    want = [(o.src_port, o.payload) for o in model.take_outputs() if isinstance(o, SendDatagram)]

    async def main() -> list[tuple[int, bytes]]:
        async with _fake_tap_running(config) as (vtep, host, peer, nursery):
            await vtep.up()
            for frame in frames:
                host.send(frame)
            assert vtep._tap is not None
            assert vtep._tap_burst(vtep._tap)  # one burst, no trio in between
            assert vtep.stats().tap_rx == 6
            got = []
            for _ in frames:
                data, addr = peer.recvfrom(65535)
                got.append((addr[1], data))
        return got

    assert trio.run(main) == want


def test_the_answer_to_a_frame_written_to_the_tap_is_read_before_going_back_to_trio() -> None:
    """A frame the TAP already holds when a datagram's frame was written to it (a guest's answer,
    made inside the write) is read and sent in the same pass: the TAP's own task is not even
    running here, and nothing awaits in between."""
    port = _port()
    config = VtepConfig(vni=10, local=A, remote=B, dst_port=port)
    request = _echo(MAC2, MAC1, 1)
    answer = _echo(MAC1, MAC2, 2)

    async def main() -> tuple[bytes, bytes]:
        header = bytes.fromhex("0800000000000a00")
        async with _fake_tap_running(config) as (vtep, host, peer, nursery):
            await vtep.up()
            assert vtep._main is not None
            nursery.start_soon(vtep._rx_loop, vtep._main)  # the TAP's task is not started
            host.send(answer)  # already waiting on the TAP when the request arrives
            peer.sendto(header + request, (A, port))
            with trio.fail_after(5):
                await trio.lowlevel.wait_readable(peer)
            sent = peer.recv(65535)
            delivered = host.recv(65535)
        return delivered, sent

    delivered, sent = trio.run(main)
    assert delivered == request
    assert sent == bytes.fromhex("0800000000000a00") + answer


def _data_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("pyvxlan-udp-")]


def test_with_a_tap_the_data_path_runs_on_its_own_thread_and_closing_ends_it() -> None:
    """With a TAP (and no guests) the frames cross on the driver's thread, not in trio: a
    datagram reaches the TAP and the TAP's frame leaves as a datagram while the trio task only
    waits on the peer's sockets; what the core learned reaches trio's subscribers and the FDB;
    cancelling ends the thread before the sockets close."""
    port = _port()
    config = VtepConfig(vni=10, local=A, remote=B, dst_port=port)
    header = bytes.fromhex("0800000000000a00")
    request, answer = _echo(MAC2, MAC1, 1), _echo(MAC1, MAC2, 2)
    notes: list[Notification] = []

    async def main() -> tuple[list[str], list[tuple[str, str]]]:
        async with _fake_tap_running(config, start=True) as (vtep, host, peer, nursery):
            host.setblocking(False)
            await nursery.start(_collect, vtep, notes)
            await vtep.up()
            peer.sendto(header + request, (A, port))
            with trio.fail_after(5):
                await trio.lowlevel.wait_readable(host)
            assert host.recv(65535) == request
            host.send(answer)
            with trio.fail_after(5):
                await trio.lowlevel.wait_readable(peer)
            assert peer.recv(65535) == header + answer
            running = _data_threads()
            with trio.fail_after(5):
                while not notes:
                    await trio.sleep(0.001)
            learned = [(e.mac, e.dst) for e in await vtep.fdb()]
        assert _data_threads() == []
        assert vtep.stats() == DriverStats(rx_datagrams=1, tx_datagrams=1, tap_rx=1, tap_tx=1)
        return running, learned

    running, learned = trio.run(main)
    assert running == ["pyvxlan-udp-vxlan10"]
    assert learned == [("00:00:00:00:00:00", B), (MAC2, B)]  # the remote's default entry, and the request's
    assert notes == [EntryLearned(MAC2, B)]


def test_on_the_data_thread_a_group_is_read_once_joined_and_left_on_down() -> None:
    """A group joined after the thread started is watched by its epoll: a datagram sent to the
    group reaches the TAP; down leaves the group and closes its socket."""
    port = _port()
    config = VtepConfig(vni=10, local=A, group="239.1.1.1", dev="lo", dst_port=port)
    header = bytes.fromhex("0800000000000a00")
    flood = _echo(MAC2, "ff:ff:ff:ff:ff:ff", 1)
    before = _memberships()

    async def main() -> bytes:
        async with _fake_tap_running(config, start=True) as (vtep, host, peer, nursery):
            peer.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(B))
            await vtep.up()
            assert _memberships() == before + 1
            peer.sendto(header + flood, ("239.1.1.1", port))
            with trio.fail_after(5):
                await trio.lowlevel.wait_readable(host)
            got = host.recv(65535)
            await vtep.down()
            assert _memberships() == before
            assert _bindable("239.1.1.1", port)  # the group's socket is closed
        return got

    assert trio.run(main) == flood
    assert _data_threads() == []


@pytest.mark.parametrize("requests", [1, 3])
def test_a_lone_datagrams_answer_is_chased_and_a_bursts_waits_for_the_next_wake_up(requests: int) -> None:
    """On the data thread, a lone datagram's frame is written to the TAP and the TAP read right
    after (the answer is often there already): it leaves in the same burst. A burst of datagrams
    (bulk traffic) does not read the TAP after them: its answers, if any, wake the thread again.
    Either way every datagram is delivered in order and the core's clock never goes back."""
    port = _port()
    config = VtepConfig(vni=10, local=A, remote=B, dst_port=port)
    header = bytes.fromhex("0800000000000a00")
    frames = [_echo(MAC2, MAC1, n) for n in range(requests)]
    answer = _echo(MAC1, MAC2, 9)

    async def main() -> tuple[list[bytes], bytes | None, bytes]:
        async with _fake_tap_running(config) as (vtep, host, peer, nursery):
            peer.setblocking(False)
            await vtep.up()
            host.send(answer)  # already waiting on the TAP when the requests are read
            for frame in frames:
                peer.sendto(header + frame, (A, port))
            await trio.sleep(0.05)  # all queued on the socket
            assert vtep._main is not None and vtep._tap is not None
            with vtep.core_lock:
                assert vtep._rx_burst(vtep._main, vtep._tap)
            delivered = [host.recv(65535) for _ in frames]
            try:
                chased: bytes | None = peer.recv(65535)
            except BlockingIOError:
                chased = None
            with vtep.core_lock:
                assert vtep._tap_burst(vtep._tap)  # the next wake-up's, when not chased
            await trio.sleep(0.05)
            sent = chased if chased is not None else peer.recv(65535)
        return delivered, chased, sent

    delivered, chased, sent = trio.run(main)
    assert delivered == frames
    assert (chased is not None) is (requests == 1)
    assert sent == header + answer


def test_a_group_the_host_cannot_join_is_the_drivers_backend_error() -> None:
    # The local address is not the host's (IP_FREEBIND binds it anyway): IP_ADD_MEMBERSHIP finds
    # no interface for the group and the kernel refuses with ENODEV. Not a ConfigError: the
    # settings are valid, the host refused them.
    async def main() -> None:
        config = VtepConfig(vni=10, local="198.51.100.77", group="239.1.1.1", dst_port=_port())
        with pytest.raises(DriverError) as info:
            async with open_vtep(config, up=True):
                pass
        assert isinstance(info.value, BackendError) and not isinstance(info.value, ConfigError)
        assert (info.value.errno, info.value.operation, str(info.value)) == (
            errno.ENODEV,
            "group",
            "group: cannot join 239.1.1.1: No such device",
        )

    trio.run(main)


def test_a_guest_that_is_not_there_is_a_lab_key_error_naming_those_that_are() -> None:
    async def main() -> None:
        config = VtepConfig(vni=10, local=A, remote=B, dst_port=_port())
        async with open_vtep(config, guests=[f"{MAC1},203.0.113.1/24"]) as vtep:
            with pytest.raises(LabKeyError) as info:
                vtep.guest("guest2")
            assert (info.value.what, info.value.name, str(info.value)) == (
                "guest",
                "guest2",
                "no guest 'guest2' (there are: guest1)",
            )

    trio.run(main)


@pytest.mark.parametrize(
    ("busy_poll", "tap", "guests", "message"),
    [
        (-1, "pvh9b", (), "busy_poll: must be a number of microseconds (an int, 0 or more), got -1"),
        (0.5, "pvh9b", (), "busy_poll: must be a number of microseconds (an int, 0 or more), got 0.5"),
        (True, "pvh9b", (), "busy_poll: must be a number of microseconds (an int, 0 or more), got True"),
        (100, None, (), "busy_poll: needs a TAP device and no in-process guests (their data path runs on trio)"),
        (
            100,
            "pvh9b",
            (f"{MAC1},203.0.113.1/24",),
            "busy_poll: needs a TAP device and no in-process guests (their data path runs on trio)",
        ),
    ],
)
def test_busy_poll_is_checked_before_anything_is_opened(
    busy_poll: object, tap: str | None, guests: tuple[str, ...], message: str
) -> None:
    port = _port()

    async def main() -> None:
        config = VtepConfig(vni=10, local=A, remote=B, dst_port=port)
        with pytest.raises(ConfigError) as info:
            async with open_vtep(config, tap=tap, guests=guests, busy_poll=busy_poll):  # type: ignore[arg-type]
                pass
        assert str(info.value) == message

    trio.run(main)
    assert _bindable(A, port)


def test_the_command_refuses_busy_poll_without_a_tap_in_one_line() -> None:
    proc = _start_cli("--vni", "10", "--local", A, "--remote", B, "--port", str(_port()), "--busy-poll", "50")
    out, err = proc.communicate(timeout=20)
    assert (proc.returncode, out, err) == (
        2,
        "",
        "pyvxlan: error: busy_poll: needs a TAP device and no in-process guests (their data path runs on trio)\n",
    )


class _SpyEpoll:
    """The data thread's epoll, recording each poll's timeout, when it returned and what."""

    def __init__(self, real: select.epoll) -> None:
        self.real = real
        self.calls: list[tuple[float, float, int]] = []  # (timeout, returned at, events)
        self.waiting = 0.0  # the timeout of the poll entered last

    def poll(self, timeout: float = -1.0) -> list[tuple[int, int]]:
        self.waiting = timeout
        events = self.real.poll(timeout)
        self.calls.append((timeout, time.monotonic(), len(events)))
        return events

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)


@pytest.mark.parametrize("busy_poll", [0, 60_000])
def test_with_busy_poll_the_data_thread_polls_without_sleeping_for_that_long_after_traffic(busy_poll: int) -> None:
    """Without busy polling the thread always waits in epoll. With it, after each datagram it
    asks epoll without waiting (a timeout of 0) until busy_poll µs have passed with nothing to
    read, then waits again; frames cross as they do without it, and closing ends the spinning
    thread."""
    port = _port()
    config = VtepConfig(vni=10, local=A, remote=B, dst_port=port)
    header = bytes.fromhex("0800000000000a00")
    request, answer = _echo(MAC2, MAC1, 1), _echo(MAC1, MAC2, 2)

    async def main() -> tuple[_SpyEpoll, float]:
        async with _fake_tap_running(config, start=True, busy_poll=busy_poll) as (vtep, host, peer, nursery):
            host.setblocking(False)
            assert vtep._epoll is not None
            spy = _SpyEpoll(vtep._epoll)
            vtep._epoll = spy  # type: ignore[assignment]  # before the thread's task runs
            await vtep.up()
            peer.sendto(header + request, (A, port))
            with trio.fail_after(5):
                await trio.lowlevel.wait_readable(host)
            sent_at = time.monotonic()
            assert host.recv(65535) == request
            host.send(answer)
            with trio.fail_after(5):
                await trio.lowlevel.wait_readable(peer)
            assert peer.recv(65535) == header + answer
            with trio.fail_after(5):  # the answer read, then quiet for busy_poll µs: it sleeps again
                while vtep.stats().tap_rx != 1 or spy.waiting != -1:
                    await trio.sleep(0.01)
        assert _data_threads() == []
        return spy, sent_at

    spy, sent_at = trio.run(main)
    waits = [t for t, _at, _n in spy.calls]
    if busy_poll == 0:
        assert set(waits) == {-1.0}
        return
    assert set(waits) == {-1.0, 0.0}
    assert waits[0] == -1.0  # asleep before any traffic
    spins = [at for t, at, n in spy.calls if t == 0.0 and n == 0]
    served = [at for t, at, n in spy.calls if n > 0 and at <= spins[-1]]
    # The last empty poll without waiting came busy_poll µs after the last event it followed.
    assert spins[-1] - served[-1] >= busy_poll / 1_000_000
    assert spins[-1] > sent_at


def test_closing_a_busy_polling_vtep_with_a_real_tap_leaves_nothing(tmp_path: object) -> None:
    if os.geteuid() != 0:
        pytest.skip("a TAP device needs CAP_NET_ADMIN (runs as root in CI)")
    port = _port()
    name = f"pvh9bp{os.getpid() % 10000}"

    async def main() -> None:
        config = VtepConfig(vni=10, local=A, remote=B, dst_port=port)
        async with open_vtep(config, tap=name, up=True, busy_poll=1_000_000) as vtep:
            assert vtep.tap == name
            with trio.fail_after(5):
                while _data_threads() != ["pyvxlan-udp-vxlan10"]:  # its task starts at the first checkpoint
                    await trio.sleep(0.001)
            await trio.sleep(0.05)  # spinning: the window is a second

    trio.run(main)
    assert _data_threads() == []
    assert _bindable(A, port)
    assert not os.path.exists(f"/sys/class/net/{name}")


class _Failures:
    """Counts the reads that found nothing (BlockingIOError) through os.read and recvmsg."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reads = self.failed = 0
        read, recvmsg = os.read, socket.socket.recvmsg

        def counted_read(fd: int, n: int) -> bytes:
            return self._count(read, fd, n)

        def counted_recvmsg(sock: socket.socket, *args: int) -> tuple[bytes, list[tuple[int, int, bytes]], int, Any]:
            return self._count(recvmsg, sock, *args)

        monkeypatch.setattr(os, "read", counted_read)
        monkeypatch.setattr(socket.socket, "recvmsg", counted_recvmsg)

    def _count(self, fn: Callable[..., _R], *args: object) -> _R:
        self.reads += 1
        try:
            return fn(*args)
        except BlockingIOError:
            self.failed += 1
            raise


def test_a_lone_datagram_and_the_answer_it_chases_cost_no_failed_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ping through the data path: the datagram is read, its frame written to the TAP, the
    answer read from the TAP and sent, and nothing is read in vain on the way (FIONREAD says the
    socket is empty, a poll that the TAP is): two reads, no BlockingIOError. A zero-length
    datagram after it (FIONREAD says 0 for it too) is read by the next burst, not lost."""
    port = _port()
    config = VtepConfig(vni=10, local=A, remote=B, dst_port=port)
    header = bytes.fromhex("0800000000000a00")
    request, answer = _echo(MAC2, MAC1, 1), _echo(MAC1, MAC2, 2)

    async def main() -> tuple[int, int, bytes, bytes, int]:
        async with _fake_tap_running(config) as (vtep, host, peer, nursery):
            await vtep.up()
            assert vtep._main is not None and vtep._tap is not None
            host.send(answer)  # made inside the write, as a guest's answer is
            peer.sendto(header + request, (A, port))
            await trio.sleep(0.05)
            failures = _Failures(monkeypatch)
            with vtep.core_lock:
                assert vtep._rx_burst(vtep._main, vtep._tap)
            reads, failed = failures.reads, failures.failed
            monkeypatch.undo()
            delivered, sent = host.recv(65535), peer.recv(65535)
            peer.sendto(b"", (A, port))  # FIONREAD: 0, as for none
            peer.sendto(header + request, (A, port))
            await trio.sleep(0.05)
            with vtep.core_lock:
                assert vtep._rx_burst(vtep._main, vtep._tap)  # the empty one, alone
                assert vtep._rx_burst(vtep._main, vtep._tap)  # then the other
        return reads, failed, delivered, sent, vtep.stats().rx_datagrams

    reads, failed, delivered, sent, received = trio.run(main)
    assert (reads, failed) == (2, 0)
    assert (delivered, sent) == (request, header + answer)
    assert received == 3
