"""pyvxlan's EVPN session and agent against real FRR (8.4.4, Debian's) in network namespaces.

The lab: an underlay bridge in the route reflector's namespace; FRR's bgpd as an iBGP route
reflector (``rr``); a host VTEP run entirely by FRR (``h``: zebra and bgpd, ``advertise-all-vni``,
a vxlan device in a bridge with ``neigh_suppress on learning off``, a guest port); and the
pyvxlan agent (``a``): an :class:`~pyvxlan.evpn.EvpnAgent` on a ``KernelVtep`` with one BGP
session to the reflector. FRR's daemons run per namespace with their own pathspace (``-N``), as
research/evpn-frr.md 3.3 found they must, and are stopped by their pid files.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from pyvxlan import FdbState, VtepConfig, pcap
from pyvxlan.evpn import (
    ENCAP_VXLAN,
    EndOfRibReceived,
    EvpnAgent,
    EvpnConfig,
    EvpnMachine,
    ExtendedCommunity,
    InclusiveMulticastRoute,
    MacIpRoute,
    MacMobility,
    Open,
    PmsiTunnel,
    RouteDistinguisher,
    RouteTarget,
    SessionEstablished,
    Update,
    UpdateReceived,
    open_bgp_session,
    split_messages,
)
from pyvxlan.kernel import open_vtep

pytestmark = pytest.mark.kernel

FRR = Path("/usr/lib/frr")
RR, HOST, AGENT = "198.51.100.201", "198.51.100.202", "198.51.100.203"
VNI = 100
HOST_MAC = "02:aa:00:00:00:10"
AGENT_MAC, AGENT_IP = "02:bb:00:00:00:20", "203.0.113.20"
CLONE_NEWNET = 0x40000000


def sh(*args: str, check: bool = True) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=check).stdout


def need_frr() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, vxlan devices, FRR's daemons)")
    if not (FRR / "bgpd").exists() or shutil.which("vtysh") is None:
        pytest.skip("FRR is not installed (python dev.py test installs Debian's frr)")


RR_CONF = f"""frr defaults traditional
hostname rr
service integrated-vtysh-config
router bgp 65000
 bgp router-id {RR}
 no bgp default ipv4-unicast
 neighbor vteps peer-group
 neighbor vteps remote-as internal
 bgp listen range 198.51.100.0/24 peer-group vteps
 address-family l2vpn evpn
  neighbor vteps activate
  neighbor vteps route-reflector-client
 exit-address-family
"""

HOST_CONF = f"""frr defaults traditional
hostname h
service integrated-vtysh-config
router bgp 65000
 bgp router-id {HOST}
 no bgp default ipv4-unicast
 neighbor {RR} remote-as internal
 address-family l2vpn evpn
  neighbor {RR} activate
  advertise-all-vni
 exit-address-family
"""


@dataclass
class Lab:
    rr: str
    host: str
    agent: str
    daemons: list[tuple[str, str]]  # (pathspace, daemon)

    def vtysh(self, ns: str, command: str) -> Any:
        return json.loads(sh("vtysh", "-N", ns, "-c", command) or "{}")


def start_frr(ns: str, conf: str, daemons: list[tuple[str, str]]) -> None:
    etc, run = Path("/etc/frr") / ns, Path("/var/run/frr") / ns
    for d in (etc, run):
        d.mkdir(parents=True, exist_ok=True)
        shutil.chown(d, "frr", "frr")
    (etc / "frr.conf").write_text(conf)
    shutil.copy("/etc/frr/vtysh.conf", etc / "vtysh.conf")
    for f in etc.iterdir():
        shutil.chown(f, "frr", "frr")
    for daemon, extra in (("zebra", ["-s", "90000000"]), ("bgpd", [])):
        daemons.append((ns, daemon))
        sh("ip", "netns", "exec", ns, str(FRR / daemon), "-d", "-N", ns, "-A", "127.0.0.1", *extra)
    # Without -f the daemons read no configuration while /etc/frr/frr.conf exists (lib/vty.c).
    sh("vtysh", "-N", ns, "-b")


def stop_frr(daemons: list[tuple[str, str]]) -> None:
    for ns, daemon in daemons:
        pid_file = Path("/var/run/frr") / ns / f"{daemon}.pid"
        try:
            pid = int(pid_file.read_text())
        except (OSError, ValueError):
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
    for ns in {ns for ns, _ in daemons}:
        shutil.rmtree(Path("/etc/frr") / ns, ignore_errors=True)
        shutil.rmtree(Path("/var/run/frr") / ns, ignore_errors=True)


@pytest.fixture
def lab() -> Iterator[Lab]:
    need_frr()
    prefix = "pvh11" + secrets.token_hex(2)
    rr, host, agent = prefix + "rr", prefix + "h", prefix + "a"
    daemons: list[tuple[str, str]] = []
    made: list[str] = []
    try:
        for ns in (rr, host, agent):
            sh("ip", "netns", "add", ns)
            made.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", rr, "link", "add", "ul", "type", "bridge")
        sh("ip", "-n", rr, "addr", "add", f"{RR}/24", "dev", "ul")
        sh("ip", "-n", rr, "link", "set", "ul", "up")
        for ns, addr, port in ((host, HOST, "ph"), (agent, AGENT, "pa")):
            sh("ip", "-n", rr, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", rr, "link", "set", port, "master", "ul", "up")
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        # The FRR host's VTEP, as FRR's docs lay it out (research/evpn-frr.md 3.2).
        for cmd in (
            "link add br100 type bridge",
            f"link add vxlan100 type vxlan id {VNI} local {HOST} dstport 4789 nolearning",
            "link set vxlan100 master br100 addrgenmode none",
            "link set vxlan100 type bridge_slave neigh_suppress on learning off",
            "link add hport type veth peer name hguest",
            "link set hport master br100",
            "link set hport up",
            "link set hguest up",
            "link set vxlan100 up",
            "link set br100 up",
        ):
            sh("ip", "-n", host, *cmd.split())
        start_frr(rr, RR_CONF, daemons)
        start_frr(host, HOST_CONF, daemons)
        yield Lab(rr, host, agent, daemons)
    finally:
        stop_frr(daemons)
        for ns in made:
            sh("ip", "netns", "del", ns, check=False)


def socket_in(netns: str) -> socket.socket:
    """A TCP socket created in ``netns`` (a socket stays in the namespace it was made in)."""
    libc = ctypes.CDLL(None, use_errno=True)
    made: list[socket.socket | BaseException] = []

    def run() -> None:
        # A thread of its own: setns changes only the calling thread, which then ends.
        try:
            with open(f"/run/netns/{netns}") as f:
                if libc.setns(f.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            made.append(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
        except BaseException as e:  # handed to the caller
            made.append(e)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if isinstance(made[0], BaseException):
        raise made[0]
    return made[0]


async def connect(netns: str, host: str) -> trio.SocketStream:
    sock = trio.socket.from_stdlib_socket(socket_in(netns))
    await sock.connect((host, 179))
    return trio.SocketStream(sock)


async def until(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll ``check`` (sync, run in a thread) until it returns something truthy."""
    with trio.move_on_after(timeout):
        while True:
            got = await trio.to_thread.run_sync(check)
            if got:
                return got
            await trio.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what}: last {check()!r}")


def bgp_streams(path: Path) -> dict[tuple[bytes, int], bytes]:
    """The TCP payload each side sent to or from port 179 in an Ethernet/IPv4 capture, by
    (source address, source port), put in sequence order (retransmissions dropped)."""
    segments: dict[tuple[bytes, int], dict[int, bytes]] = {}
    with path.open("rb") as f:
        for _ts, _link, buf, start, end, _wire in pcap.raw_records(f):
            frame = bytes(buf[start:end])
            if len(frame) < 54 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
                continue
            ip = 14
            tcp = ip + (frame[ip] & 0x0F) * 4
            total = int.from_bytes(frame[ip + 2 : ip + 4], "big")
            sport, dport, seq = struct.unpack("!HHI", frame[tcp : tcp + 8])
            payload = frame[tcp + (frame[tcp + 12] >> 4) * 4 : ip + total]
            if payload and 179 in (sport, dport):
                segments.setdefault((frame[26:30], sport), {})[seq] = payload
    return {flow: b"".join(p for _, p in sorted(parts.items())) for flow, parts in segments.items()}


def bridge_fdb(ns: str, dev: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(sh("bridge", "-n", ns, "-j", "fdb", "show", "dev", dev) or "[]")
    return rows


def test_our_session_with_frr_route_reflector(lab: Lab) -> None:
    """Two of our sessions with FRR's bgpd as route reflector: one announces a type-2 and a
    type-3 route, FRR accepts them (its own table), reflects them to the other, and withdraws
    them when the announcing session closes."""

    async def main() -> None:
        rd = RouteDistinguisher.ipv4(AGENT, 1)
        communities: list[ExtendedCommunity] = [RouteTarget.as2(65000, VNI), ENCAP_VXLAN, MacMobility(3)]
        mac_route = MacIpRoute(rd, AGENT_MAC, AGENT_IP, (VNI,))
        imet = InclusiveMulticastRoute(rd, AGENT)
        async with open_bgp_session(
            asn=65000, router_id="198.51.100.250", stream=await connect(lab.host, RR), hold_time=9
        ) as listener:
            # The listener shares the host's namespace, as another VTEP would; FRR's own VTEP there
            # peers with the reflector too.
            events = listener.events()
            first = await events.__anext__()
            assert isinstance(first, SessionEstablished)
            assert first.peer.router_id == RR and first.peer.asn == 65000 and first.hold_time == 9
            async with open_bgp_session(asn=65000, router_id=AGENT, stream=await connect(lab.agent, RR)) as speaker:
                s_events = speaker.events()
                assert isinstance(await s_events.__anext__(), SessionEstablished)
                await speaker.send(Update.announce([mac_route], next_hop=AGENT, communities=communities))
                await speaker.send(
                    Update.announce([imet], next_hop=AGENT, communities=communities[:2], pmsi=PmsiTunnel(AGENT, VNI))
                )
                await speaker.send(Update.end_of_rib())

                def frr_has_them() -> Any:
                    table = lab.vtysh(lab.rr, "show bgp l2vpn evpn route json")
                    return table.get(str(rd)) if len(table.get(str(rd), {})) >= 3 else None

                got = await until("FRR's reflector to hold our routes", frr_has_them)
                prefixes = sorted(k for k in got if k.startswith("["))
                assert prefixes == [
                    f"[2]:[0]:[48]:[{AGENT_MAC}]:[32]:[{AGENT_IP}]",
                    f"[3]:[0]:[32]:[{AGENT}]",
                ]
                path = got[prefixes[0]]["paths"][0][0]  # a list of lists in FRR 8.4.4
                assert path["extendedCommunity"]["string"] == "RT:65000:100 ET:8 MM:3"
                reflected: list[Update] = []
                with trio.fail_after(30):
                    async for event in events:
                        if (
                            isinstance(event, UpdateReceived)
                            and event.update.reach
                            and event.update.reach.next_hop == AGENT
                        ):
                            reflected.append(event.update)
                        routes = {r for u in reflected if u.reach for r in u.reach.routes}
                        if {mac_route, imet} <= routes:
                            break
                by_route = {r: u for u in reflected if u.reach for r in u.reach.routes}
                assert by_route[mac_route].communities == tuple(communities)
                assert by_route[imet].pmsi == PmsiTunnel(AGENT, VNI)
                # RFC 4456: the reflector adds ORIGINATOR_ID and CLUSTER_LIST.
                codes = [a.type_code for a in by_route[mac_route].attributes]
                assert 9 in codes and 10 in codes
            # The speaker's session closed with CEASE: the reflector withdraws its routes.
            withdrawn = set()
            with trio.fail_after(30):
                async for event in events:
                    if isinstance(event, UpdateReceived) and event.update.unreach:
                        withdrawn |= {r.key for r in event.update.unreach.routes}
                    if {mac_route.key, imet.key} <= withdrawn:
                        break
            assert not isinstance(event, EndOfRibReceived)

    trio.run(main)


def test_agent_with_frr_host_both_ways_move_and_session_loss(lab: Lab) -> None:
    """The pyvxlan agent on a kernel vxlan device, one iBGP session to FRR's reflector:
    FRR's host MAC and flood-list membership reach the agent's device; the agent's MAC and IP
    reach FRR's zebra and kernel; a move to the agent (MAC mobility sequence 1) and back
    (sequence 2) converges on both; a lost session removes what the agent had programmed."""

    async def main() -> None:
        # FRR advertises MACs the bridge holds on a non-vxlan port (research/evpn-frr.md 2.1).
        sh("bridge", "-n", lab.host, "fdb", "add", HOST_MAC, "dev", "hport", "master", "dynamic")
        # Capture the session, to hold the codec against every byte FRR sent in this lab.
        capture = Path(f"/tmp/{lab.agent}-bgp.pcap")
        dump = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                lab.agent,
                "tcpdump",
                "-U",
                "-s0",
                "-i",
                "eth0",
                "-w",
                str(capture),
                "tcp port 179",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert dump.stderr is not None
        # tcpdump says "listening on eth0" once its socket is capturing.
        line = await trio.to_thread.run_sync(dump.stderr.readline)
        assert "listening on eth0" in line, line
        try:
            await run_agent(capture)
        finally:
            dump.terminate()
            dump.wait(10)
            dump.stderr.close()
        streams = bgp_streams(capture)
        capture.unlink()
        frr_sent = streams[(socket.inet_aton(RR), 179)]
        messages, rest = split_messages(frr_sent)
        assert rest == b"" and isinstance(messages[0], Open)  # the capture holds the whole session
        assert b"".join(m.encode() for m in messages) == frr_sent
        updates = [m for m in messages if isinstance(m, Update)]
        assert sum(u.is_end_of_rib for u in updates) == 1
        host_routes = [(u, r) for u in updates if u.reach for r in u.reach.routes if u.reach.next_hop == HOST]
        imets = [u for u, r in host_routes if isinstance(r, InclusiveMulticastRoute)]
        assert imets and imets[0].pmsi == PmsiTunnel(HOST, VNI)
        macs = [(u, r) for u, r in host_routes if isinstance(r, MacIpRoute) and r.mac == HOST_MAC]
        assert [r.labels for _, r in macs] == [(VNI,), (VNI,)]
        assert [next((c for c in u.communities if isinstance(c, MacMobility)), None) for u, _ in macs] == [
            None,
            MacMobility(2),
        ]
        assert all(RouteTarget.as2(65000, VNI) in u.communities and ENCAP_VXLAN in u.communities for u, _ in macs)

    async def run_agent(capture: Path) -> None:
        config = VtepConfig(vni=VNI, local=AGENT, learning=False, name="vxlan100")
        async with open_vtep(config, netns=lab.agent, up=True) as vtep:
            agent = EvpnAgent(EvpnMachine(EvpnConfig(vni=VNI, local=AGENT, asn=65000)), vtep)
            async with trio.open_nursery() as nursery:
                async with open_bgp_session(asn=65000, router_id=AGENT, stream=await connect(lab.agent, RR)) as conn:
                    nursery.start_soon(agent.serve, conn)
                    await agent.attach(AGENT_MAC, ip=AGENT_IP)

                    async def our_fdb() -> dict[str, set[str]]:
                        table: dict[str, set[str]] = {}
                        for e in await vtep.fdb():
                            table.setdefault(e.mac, set()).add(e.dst)
                        return table

                    # 1. FRR's host -> the agent's device: its MAC (extern_learn) and the flood entry.
                    with trio.fail_after(30):
                        while (await our_fdb()).get(HOST_MAC) != {HOST} or HOST not in (await our_fdb()).get(
                            "00:00:00:00:00:00", set()
                        ):
                            await trio.sleep(0.2)
                    entry = next(e for e in await vtep.fdb() if e.mac == HOST_MAC)
                    assert entry.extern_learn and entry.state is FdbState.REACHABLE

                    # 2. The agent -> FRR's host: zebra's table, the kernel FDB, the ARP suppression entry.
                    def host_sees_agent() -> Any:
                        macs = lab.vtysh(lab.host, "show evpn mac vni 100 json").get("macs", {})
                        return macs.get(AGENT_MAC, {}).get("remoteVtep") == AGENT and macs[AGENT_MAC]

                    await until("FRR's host to learn the agent's MAC", host_sees_agent)
                    await until(
                        "the agent's MAC in the host's vxlan FDB",
                        lambda: any(
                            r["mac"] == AGENT_MAC and r.get("dst") == AGENT for r in bridge_fdb(lab.host, "vxlan100")
                        ),
                    )
                    await until(
                        "the host's flood entry toward the agent",
                        lambda: any(
                            r["mac"] == "00:00:00:00:00:00" and r.get("dst") == AGENT
                            for r in bridge_fdb(lab.host, "vxlan100")
                        ),
                    )
                    await until(
                        "a neighbour entry for the agent's IP on the host's bridge",
                        lambda: AGENT_MAC in sh("ip", "-n", lab.host, "neigh", "show", AGENT_IP, "dev", "br100"),
                    )

                    # 3. The host's guest moves to the agent: sequence 1 wins on FRR's side.
                    await agent.attach(HOST_MAC)
                    assert agent.machine.sequence(HOST_MAC) == 1

                    def host_sees_move() -> Any:
                        mac = lab.vtysh(lab.host, "show evpn mac vni 100 json").get("macs", {}).get(HOST_MAC, {})
                        return mac.get("type") == "remote" and mac.get("remoteVtep") == AGENT and mac

                    moved = await until("FRR's host to see the move", host_sees_move)
                    assert moved["remoteSequence"] == 1
                    with trio.fail_after(30):
                        while HOST_MAC in await our_fdb():
                            await trio.sleep(0.2)

                    # ... and back: FRR re-learns it locally and outbids us with sequence 2.
                    sh("bridge", "-n", lab.host, "fdb", "replace", HOST_MAC, "dev", "hport", "master", "dynamic")
                    with trio.fail_after(30):
                        while (await our_fdb()).get(HOST_MAC) != {HOST}:
                            await trio.sleep(0.2)
                    assert agent.machine.fdb[HOST_MAC] == (HOST, False)
                    assert not any(
                        a.route.mac == HOST_MAC for a in agent.machine.advertised if isinstance(a.route, MacIpRoute)
                    )

                # 4. The session is gone: what it brought leaves the agent's device, and FRR's
                # host forgets the agent's MAC.
                with trio.fail_after(30):
                    while set(await our_fdb()) - set():
                        await trio.sleep(0.2)
                assert await vtep.fdb() == []
                await until(
                    "FRR's host to forget the agent's MAC",
                    lambda: AGENT_MAC not in lab.vtysh(lab.host, "show evpn mac vni 100 json").get("macs", {}),
                )
                nursery.cancel_scope.cancel()

    trio.run(main)


def test_keepalives_hold_a_short_session_with_frr(lab: Lab) -> None:
    """RFC 4271 10: with a 3 s hold time both sides send KEEPALIVEs every second; the session
    outlives several hold times, and FRR reports the negotiated timers."""

    async def main() -> None:
        async with open_bgp_session(
            asn=65000, router_id=AGENT, stream=await connect(lab.agent, RR), hold_time=3
        ) as conn:
            events = conn.events()
            established = await events.__anext__()
            assert isinstance(established, SessionEstablished) and established.hold_time == 3
            await trio.sleep(7.5)
            assert conn.session.state.value == "established"
            neighbors = await trio.to_thread.run_sync(lab.vtysh, lab.rr, "show bgp neighbors json")
            peer = neighbors[AGENT]
            assert peer["bgpState"] == "Established"
            assert (peer["bgpTimerHoldTimeMsecs"], peer["bgpTimerKeepAliveIntervalMsecs"]) == (3000, 1000)
            assert peer["messageStats"]["keepalivesRecv"] >= 7

    trio.run(main)
