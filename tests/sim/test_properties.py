"""Properties over random small labs with faults: VNIs never mix, and no frame disappears."""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st

from pyvxlan.lab.topology import FdbMode, GuestSpec, Host, Topology, Underlay, VxlanDevice
from pyvxlan.sim import LinkProfile, SimLab, open_lab, run
from pyvxlan.sim import datapath as sim_lab

VNIS = (10, 20)


@st.composite
def labs(draw: st.DrawFn) -> tuple[Topology, list[tuple[str, Any]], dict[str, LinkProfile]]:
    n_hosts = draw(st.integers(2, 4))
    hosts = []
    guests: list[GuestSpec] = []
    for h in range(1, n_hosts + 1):
        vnis = draw(st.lists(st.sampled_from(VNIS), min_size=1, max_size=2, unique=True))
        hosts.append(
            Host(f"host{h}", f"198.51.100.{h}", tuple(VxlanDevice(v, group="239.1.1.1") for v in sorted(vnis)))
        )
        for v in sorted(vnis):
            for _ in range(draw(st.integers(0, 2))):
                k = len(guests) + 1
                # Overlay addresses repeat across VNIs on purpose: only the VNI keeps them apart.
                same_vni = sum(1 for g in guests if g.vni == v) + 1
                guests.append(
                    GuestSpec(f"g{k}", f"host{h}", v, f"02:00:00:00:{v:02x}:{k:02x}", f"203.0.113.{same_vni}/24")
                )
    mode = draw(st.sampled_from(list(FdbMode)))
    topo = Topology(
        Underlay("198.51.100.0/24", mtu=draw(st.sampled_from([1500, 1280]))), tuple(hosts), tuple(guests), mode
    )
    actions: list[tuple[str, Any]] = []
    if guests:
        for _ in range(draw(st.integers(1, 8))):
            kind = draw(st.sampled_from(["ping", "udp", "raw", "move", "vtep-down", "link-down", "partition", "wait"]))
            g = draw(st.sampled_from(guests)).name
            if kind in ("ping", "udp"):
                actions.append((kind, (g, f"203.0.113.{draw(st.integers(1, 4))}", draw(st.integers(1, 1400)))))
            elif kind == "raw":
                actions.append((kind, (g, draw(st.binary(min_size=14, max_size=80)))))
            elif kind == "move":
                actions.append((kind, (g, draw(st.sampled_from(hosts)).name)))
            elif kind == "vtep-down":
                chosen = draw(st.sampled_from(hosts))
                actions.append((kind, (chosen.name, draw(st.sampled_from([d.vni for d in chosen.devices])))))
            elif kind == "link-down":
                actions.append((kind, draw(st.sampled_from(hosts)).name))
            elif kind == "partition":
                side = draw(st.lists(st.sampled_from([h.name for h in hosts]), min_size=1, unique=True))
                actions.append((kind, side))
            else:
                actions.append((kind, draw(st.floats(0.0, 400.0))))
    profile = st.builds(
        LinkProfile,
        latency=st.sampled_from([0.0, 0.0005, 0.002]),
        jitter=st.sampled_from([0.0, 0.003]),
        loss=st.sampled_from([0.0, 0.2]),
        duplicate=st.sampled_from([0.0, 0.3]),
        reorder=st.sampled_from([0.0, 0.3]),
    )
    links = {h.name: draw(profile) for h in hosts}
    return topo, actions, links


@settings(max_examples=40)
@given(labs(), st.integers(0, 3), st.data())
def test_frames_never_cross_vnis_and_every_copy_ends_with_a_counted_reason(
    lab_spec: tuple[Topology, list[tuple[str, Any]], dict[str, LinkProfile]], seed: int, data: st.DataObject
) -> None:
    topo, actions, links = lab_spec
    # Watching a guest takes it off the lab's refused-flood fast path, so only some are watched;
    # and the fan-out cache, normally for large groups only, is used at any size in some runs.
    watched = data.draw(st.sets(st.sampled_from([g.name for g in topo.guests]))) if topo.guests else set()
    cache_min = data.draw(st.sampled_from([0, sim_lab.FANOUT_CACHE_MIN]))
    vni_of_mac = {g.mac: g.vni for g in topo.guests}
    crossed: list[str] = []

    async def main() -> SimLab:
        async with open_lab(topo, seed=seed) as lab:
            for guest in topo.guests:
                if guest.name not in watched:
                    continue

                def observe(name: str, frame: bytes, outgoing: bool, vni: int = guest.vni) -> None:
                    src = frame[6:12].hex(":")
                    if not outgoing and vni_of_mac.get(src, vni) != vni:
                        crossed.append(f"{name} (VNI {vni}) got a frame from {src}")

                lab.guest(guest.name).observe = observe
            for host, profile in links.items():
                lab.set_link(host, profile)
            for kind, arg in actions:
                if kind == "ping":
                    await lab.guest(arg[0]).ping(arg[1], count=2, interval=0.1, timeout=0.5)
                elif kind == "udp":
                    lab.guest(arg[0]).send_udp(arg[1], 9, b"u" * arg[2])
                elif kind == "raw":
                    lab.guest(arg[0]).send_frame(arg[1])
                elif kind == "move":
                    spec = topo.guest(arg[0])
                    if any(d.vni == spec.vni for d in topo.host(arg[1]).devices):
                        await lab.move_guest(arg[0], arg[1])
                elif kind == "vtep-down":
                    await lab.vtep_down(*arg)
                elif kind == "link-down":
                    lab.link_down(arg)
                elif kind == "partition":
                    lab.partition(arg)
                else:
                    await lab.sleep(arg)
            await lab.sleep(10.0)  # let every retry, timer and frame in flight finish
            return lab

    with patch.object(sim_lab, "FANOUT_CACHE_MIN", cache_min):
        lab = run(main)
    assert crossed == []
    ledger = lab.ledger
    assert ledger.ended["vanished"] == 0
    assert ledger.balance() == 0, (ledger.created, dict(ledger.ended))
    assert set(lab.stats().drops) <= KNOWN_REASONS


KNOWN_REASONS = {
    # underlay
    "loss", "mtu", "partition", "link_down", "no_receivers", "unreachable", "unknown_vni",
    # bridges and guests' NICs
    "bridge_same_port", "bridge_no_port", "not_for_guest", "guest_detached",
    # the core (pyvxlan.DropReason)
    "no_tx_target", "device_down", "malformed", "missing_i_flag", "reserved_bits", "local_mac",
    "invalid_source_mac", "entry_exists", "proxy_unresolved", "proxy_consumed",
} | {f"guest:{r}" for r in (
    "no_route", "arp_queue_full", "arp_failed", "guest_unhandled", "not_for_guest_ip",
    "unexpected_echo_reply", "late_echo_reply", "port_unreachable",
)}  # fmt: skip


@st.composite
def flood_labs(draw: st.DrawFn) -> tuple[Topology, list[tuple[str, Any]]]:
    """One guest per host on one multicast group (the scale benchmark's shape, smaller), and
    traffic that floods: pings (ARP or neighbour solicitations) and raw broadcast, multicast and
    unicast frames, ARP among them."""
    n = draw(st.integers(2, 10))
    v6 = draw(st.booleans())
    hosts = tuple(Host(f"host{i}", f"198.51.100.{i}", (VxlanDevice(10, group="239.1.1.1"),)) for i in range(1, n + 1))
    ips = [f"2001:db8:1::{i:x}" if v6 else f"203.0.113.{i}" for i in range(1, n + 1)]
    macs = [f"02:00:00:00:00:{i:02x}" for i in range(1, n + 1)]
    guests = tuple(
        GuestSpec(f"g{i}", f"host{i}", 10, macs[i - 1], ips[i - 1] + ("/64" if v6 else "/24")) for i in range(1, n + 1)
    )
    mode = draw(st.sampled_from(list(FdbMode)))
    actions: list[tuple[str, Any]] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["ping", "raw", "wait"]))
        src = draw(st.integers(1, n))
        if kind == "ping":
            actions.append((kind, (f"g{src}", ips[draw(st.integers(1, n)) - 1])))
        elif kind == "raw":
            other = draw(st.integers(1, n))
            dst = draw(
                st.sampled_from(
                    [
                        "ffffffffffff",
                        "01005e000001",
                        "333300000001",
                        f"3333ff0000{other:02x}",
                        macs[other - 1].replace(":", ""),
                    ]
                )
            )
            if draw(st.booleans()):  # an ARP frame: a request or reply, for some guest's address or none
                op = draw(st.sampled_from([1, 2]))
                target = bytes([203, 0, 113, draw(st.integers(1, n + 1))])
                body = bytes.fromhex("0806") + bytes.fromhex("000108000604") + op.to_bytes(2, "big")
                body += bytes.fromhex(macs[src - 1].replace(":", "")) + bytes([203, 0, 113, src]) + bytes(6) + target
            else:
                body = bytes.fromhex(draw(st.sampled_from(["86dd", "88b5"]))) + bytes(46)
            actions.append((kind, (f"g{src}", bytes.fromhex(dst + macs[src - 1].replace(":", "")) + body)))
        else:
            actions.append((kind, draw(st.sampled_from([0.001, 0.5, 2.0]))))
    return Topology(Underlay("198.51.100.0/24"), hosts, guests, mode), actions


@settings(max_examples=30)
@given(flood_labs(), st.data())
def test_the_lone_guest_fast_path_ends_exactly_as_the_bridges_own_flood(
    spec: tuple[Topology, list[tuple[str, Any]]], data: st.DataObject
) -> None:
    # The flood loop does not hand a frame to a bridge's only guest when the lab's NIC index says
    # the guest's NIC refuses it (Bridge.flood_refused, NicIndex.refused); a watched guest takes
    # every frame through Bridge.receive_flood and SimGuest.deliver. Both must end the same way.
    topo, actions = spec
    cache_min = data.draw(st.sampled_from([0, sim_lab.FANOUT_CACHE_MIN]))

    def outcome(watch: bool) -> tuple[object, ...]:
        async def main() -> tuple[object, ...]:
            async with open_lab(topo) as lab:
                if watch:
                    for guest in topo.guests:
                        lab.guest(guest.name).observe = lambda *_args: None
                replies = []
                for kind, arg in actions:
                    if kind == "ping":
                        replies.append((await lab.guest(arg[0]).ping(arg[1], timeout=0.5)).received)
                    elif kind == "raw":
                        lab.guest(arg[0]).send_frame(arg[1])
                    else:
                        await lab.sleep(arg)
                await lab.sleep(10.0)
                guests = [
                    (lab.guest(g.name).received, sorted(lab.guest(g.name).arp_cache.items())) for g in topo.guests
                ]
                fdbs = [lab.fdb_lines(h.name, 10) for h in topo.hosts]
                # The bridges that learned from the lab's flood log (the refused floods) and from
                # their own frames (a watched guest's) end the same.
                bridges = [
                    (lab.bridge(h.name, 10).entries(lab.now), lab.bridge(h.name, 10).flooded) for h in topo.hosts
                ]
                assert lab.ledger.balance() == 0
                return replies, lab.stats(), dict(lab.ledger.ended), guests, fdbs, bridges

        with patch.object(sim_lab, "FANOUT_CACHE_MIN", cache_min):
            return run(main)

    assert outcome(False) == outcome(True)
