"""Properties over random small labs with faults: VNIs never mix, and no frame disappears."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pyvxlan.sim import LinkProfile, SimLab, open_lab, run
from pyvxlan.topology import FdbMode, GuestSpec, Host, Topology, Underlay, VxlanDevice

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
@given(labs(), st.integers(0, 3))
def test_frames_never_cross_vnis_and_every_copy_ends_with_a_counted_reason(
    lab_spec: tuple[Topology, list[tuple[str, Any]], dict[str, LinkProfile]], seed: int
) -> None:
    topo, actions, links = lab_spec
    vni_of_mac = {g.mac: g.vni for g in topo.guests}
    crossed: list[str] = []

    async def main() -> SimLab:
        async with open_lab(topo, seed=seed) as lab:
            for guest in topo.guests:

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
