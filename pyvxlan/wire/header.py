"""VXLAN headers: RFC 7348, Group Based Policy, and VXLAN-GPE, as immutable 8-byte values.

A header holds its 8 wire bytes and reads every field from them on access. That makes ``decode``
lossless for any 8 bytes and keeps it cheap: a decode checks its input and stores the bytes in a new
object (about 2.1 times a bare ``struct.unpack_from`` of the two words; a frozen dataclass set
through its slot descriptor costs about 2.9 times, a subclass of ``bytes`` 2.8, a tuple of the two
words 3.7; measured with bench/codec.py's loop, see ``docs/performance.md``).

The wire's bits are defined here once, named as in Linux's ``include/net/vxlan.h``: the flag and
reserved masks (:data:`FLAG_I`, :data:`RESERVED0`, ...), the struct of the two header words
(:data:`HEADER_WORDS`) and the bytes of a plain header (:func:`vxlan_header_bytes`). The core, the
simulator, the decode command and the strategies use these names instead of their own numbers.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, cast, final

from pyvxlan.errors import ConfigError, MissingIFlagError, ReservedBitsError, TruncatedError

__all__ = [
    "FLAG_G",
    "FLAG_I",
    "FLAG_I_BYTE0",
    "GBP_A",
    "GBP_D",
    "GBP_ID_MASK",
    "GBP_USED",
    "GPE_B",
    "GPE_LINUX_USED0",
    "GPE_NP_MASK",
    "GPE_O",
    "GPE_P",
    "GPE_RESERVED0",
    "GPE_VER_MASK",
    "HEADER_LEN",
    "HEADER_WORDS",
    "RESERVED0",
    "RESERVED0_GBP",
    "RESERVED1",
    "VNI_MAX",
    "GpeHeader",
    "GpeNextProtocol",
    "GroupPolicy",
    "VxlanHeader",
    "vxlan_header_bytes",
]

HEADER_LEN: Final = 8
VNI_MAX: Final = (1 << 24) - 1

# Word-0 bits, named as in Linux's include/net/vxlan.h (bit 0 of the RFC diagram is the MSB).
FLAG_I: Final = 0x08000000  # VXLAN_HF_VNI
FLAG_I_BYTE0: Final = FLAG_I >> 24  # the I flag within byte 0, for code that reads the flags byte
FLAG_G: Final = 0x80000000  # VXLAN_HF_GBP
GBP_D: Final = 0x00400000  # don't learn
GBP_A: Final = 0x00080000  # policy applied
GBP_ID_MASK: Final = 0x0000FFFF
GBP_USED: Final = FLAG_G | 0x00FFFFFF  # VXLAN_GBP_USED_BITS: G and all of bytes 1-3
GPE_VER_MASK: Final = 0x30000000
GPE_P: Final = 0x04000000
GPE_B: Final = 0x02000000
GPE_O: Final = 0x01000000
GPE_NP_MASK: Final = 0x000000FF
GPE_RESERVED0: Final = 0xC0FFFF00  # R R . . . . . . | 16 reserved bits
# Linux's GPE device uses VER|NP|OAM|next-protocol; B (draft-12) is reserved to Linux.
GPE_LINUX_USED0: Final = FLAG_I | GPE_VER_MASK | GPE_P | GPE_O | GPE_NP_MASK
# What Linux's vxlan_rcv requires clear (its cfg.reserved_bits): in word 0 all but I, on a gbp
# device all but I, G and bytes 1-3; in word 1 the low byte, always.
RESERVED0: Final = 0xFFFFFFFF & ~FLAG_I
RESERVED0_GBP: Final = 0xFFFFFFFF & ~(FLAG_I | GBP_USED)
RESERVED1: Final = 0x000000FF

HEADER_WORDS: Final = struct.Struct("!II")
"""The 8 header bytes as two big-endian 32-bit words: flags (and GBP or GPE fields), then VNI << 8."""
# Typed: struct's unpack returns tuple[Any, ...] to type checkers.
_unpack: Final = cast("Callable[..., tuple[int, int]]", HEADER_WORDS.unpack_from)
_pack = HEADER_WORDS.pack
_new = object.__new__


def vxlan_header_bytes(vni: int) -> bytes:
    """The 8 bytes of a plain RFC 7348 header for ``vni`` (I set, nothing else), unchecked: for a
    transmit path that checked ``vni`` once.

    >>> vxlan_header_bytes(10).hex()
    '0800000000000a00'
    """
    return _pack(FLAG_I, vni << 8)


def describe(value: object) -> str:
    """``value``'s type and a short repr, for an error message (a huge buffer prints cut)."""
    import reprlib  # only on the error path

    return f"{type(value).__name__} {reprlib.repr(value)}"


def _require_int(value: object, field: str) -> int:
    if type(value) is not int and (not isinstance(value, int) or isinstance(value, bool)):
        raise ConfigError(field, f"must be an int, got {describe(value)}")
    return value


def check_int(value: object, field: str, low: int, high: int | None) -> int:
    """``value`` if it is an ``int`` in ``low..high``; else :class:`~pyvxlan.ConfigError` naming ``field``.

    ``high=None`` leaves the top open. ``bool`` is refused (``True`` is not port 1); ``int``
    subclasses such as an ``IntEnum`` pass.

    >>> check_int(True, "dst_port", 1, 65535)
    Traceback (most recent call last):
    ...
    pyvxlan.errors.ConfigError: dst_port: must be an int, got bool True
    """
    value = _require_int(value, field)
    if high is None:
        if value < low:
            raise ConfigError(field, f"must be >= {low}, got {value}")
    elif not low <= value <= high:
        raise ConfigError(field, f"must be in {low}..{high}, got {value}")
    return value


def check_bool(value: object, field: str) -> bool:
    """``value`` if it is ``True`` or ``False``; else :class:`~pyvxlan.ConfigError` naming ``field``.

    An int or a string is refused: ``strict="no"`` would otherwise mean strict.
    """
    if value is not True and value is not False:
        raise ConfigError(field, f"must be a bool, got {describe(value)}")
    return value


def byte_view(data: object, field: str) -> memoryview:
    """A 1-dimensional byte view of a bytes-like ``data``; :class:`~pyvxlan.ConfigError` otherwise.

    An int or a str is refused (``bytes(8)`` would be eight zero bytes); a buffer of wider items
    is read as its bytes, as :func:`struct.unpack_from` does.
    """
    if isinstance(data, (str, int)):
        raise ConfigError(field, f"must be a bytes-like object, got {describe(data)}")
    try:
        view = memoryview(data)  # type: ignore[arg-type]  # any buffer; refused below if not one
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")  # offsets count bytes, whatever the buffer's item type
    except TypeError:
        raise ConfigError(field, f"must be a bytes-like object, got {describe(data)}") from None
    return view


def _eight_bytes(data: Any, offset: int, layer: str) -> bytes:
    """The 8 bytes at ``offset`` of any buffer: decode's general path (its fast path takes an
    exact 8-byte ``bytes`` at offset 0)."""
    check_int(offset, "offset", 0, None)
    view = byte_view(data, "data")
    raw = bytes(view[offset : offset + HEADER_LEN])
    if len(raw) != HEADER_LEN:
        raise TruncatedError(layer, offset, f"need 8 bytes, got {len(raw)}")
    return raw


@dataclass(frozen=True, slots=True)
class GroupPolicy:
    """The Group Based Policy fields (draft-smith-vxlan-group-policy) at Linux's bit positions.

    ``dont_learn`` is the D bit (byte 1, 0x40) and ``policy_applied`` the A bit (byte 1, 0x08), where
    Linux, Wireshark and VPP put them (gopacket puts A at 0x80; pyvxlan does not).

    >>> VxlanHeader(vni=10, group_policy=GroupPolicy(policy_id=50000, dont_learn=True)).encode().hex()
    '8840c35000000a00'
    """

    policy_id: int = 0
    dont_learn: bool = False
    policy_applied: bool = False

    def __post_init__(self) -> None:
        check_int(self.policy_id, "policy_id", 0, 0xFFFF)
        check_bool(self.dont_learn, "dont_learn")
        check_bool(self.policy_applied, "policy_applied")

    @property
    def word0_bits(self) -> int:
        """The bits this policy sets in word 0, G included."""
        return FLAG_G | self.policy_id | (GBP_D if self.dont_learn else 0) | (GBP_A if self.policy_applied else 0)


def _check_vni(vni: object) -> int:
    return check_int(vni, "vni", 0, VNI_MAX)


def _check_reserved(reserved: object, allowed: int) -> int:
    # A mask: its errors print in hex.
    reserved = _require_int(reserved, "reserved")
    if not 0 <= reserved <= 0xFFFFFFFFFFFFFFFF:
        raise ConfigError("reserved", f"must be a 64-bit mask, got {reserved:#x}")
    if reserved & ~allowed:
        raise ConfigError("reserved", f"{reserved:#018x} overlaps the flags, policy or VNI fields")
    return reserved


def _packed_words(word0: int, word1: int) -> bytes:
    return _pack(check_int(word0, "word0", 0, 0xFFFFFFFF), check_int(word1, "word1", 0, 0xFFFFFFFF))


class _Header:
    """What the two header types share: their 8 wire bytes, the two words, the VNI and the I flag,
    and equality and hashing by type and bytes (a ``VxlanHeader`` never equals a ``GpeHeader``)."""

    __slots__ = ("_wire",)
    _wire: bytes

    @property
    def word0(self) -> int:
        """Bytes 0-3 as a big-endian integer: the flags and the type's fields (GBP, GPE)."""
        return _unpack(self._wire)[0]

    @property
    def word1(self) -> int:
        """Bytes 4-7 as a big-endian integer: the VNI and the last reserved byte."""
        return _unpack(self._wire)[1]

    # Field access: computed from the bytes, so that decoding stays one store.
    @property
    def vni(self) -> int:
        """The 24-bit VXLAN Network Identifier."""
        return _unpack(self._wire)[1] >> 8

    @property
    def flags(self) -> int:
        """Byte 0, the flags byte (0x08 for a plain header)."""
        return self._wire[0]

    @property
    def i_flag(self) -> bool:
        """The I flag: the VNI is valid (RFC 7348 requires it on transmit)."""
        return bool(self._wire[0] & FLAG_I_BYTE0)

    def encode(self) -> bytes:
        """The 8 bytes of this header."""
        return self._wire

    def __bytes__(self) -> bytes:
        return self._wire

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._wire == other._wire

    def __hash__(self) -> int:
        return hash((type(self), self._wire))


@final
class VxlanHeader(_Header):
    """An RFC 7348 VXLAN header, with the Group Based Policy extension when G is set.

    >>> h = VxlanHeader(vni=10)
    >>> h.encode().hex()
    '0800000000000a00'
    >>> VxlanHeader.decode(bytes.fromhex("0800000000000a00")) == h
    True

    A header is an immutable value holding its 8 wire bytes: ``bytes(h)`` and ``h.encode()`` give
    them back, so ``decode`` then ``encode`` returns any 8 bytes unchanged; reserved bits are kept
    and ``reserved`` reports them. Its fields are read-only properties. ``strict=True`` applies
    Linux's receive rules instead of RFC 7348's "ignore".

    Equality and hashing go by type and bytes: two ``VxlanHeader`` are equal when their 8 bytes
    are, and equal headers hash alike. A header never equals plain ``bytes`` or a ``GpeHeader``
    with the same bytes, so a set or a dict key never mixes them.
    """

    __slots__ = ()

    def __init__(
        self,
        vni: int = 0,
        *,
        group_policy: GroupPolicy | None = None,
        i_flag: bool = True,
        reserved: int = 0,
    ) -> None:
        _check_vni(vni)
        if group_policy is not None and type(group_policy) is not GroupPolicy:
            raise ConfigError("group_policy", f"must be a GroupPolicy or None, got {describe(group_policy)}")
        check_bool(i_flag, "i_flag")
        # Exactly the complement of what ``reserved`` reports, so that any decoded header can be
        # rebuilt from its fields; G is never reserved (it would turn the header into GBP).
        used0 = FLAG_I | FLAG_G | (GBP_D | GBP_A | GBP_ID_MASK if group_policy else 0)
        _check_reserved(reserved, ((~used0 & 0xFFFFFFFF) << 32) | RESERVED1)
        word0 = (FLAG_I if i_flag else 0) | (group_policy.word0_bits if group_policy else 0)
        self._wire = _pack(word0 | (reserved >> 32), (vni << 8) | (reserved & RESERVED1))

    @staticmethod
    def decode(
        data: bytes | bytearray | memoryview, strict: bool = False, gbp: bool = False, offset: int = 0
    ) -> VxlanHeader:
        """Decode the 8 bytes at ``offset`` of ``data``.

        Lenient (the default) reads as RFC 7348 says: reserved bits are ignored but reported in
        ``reserved``. ``strict=True`` applies Linux's ``vxlan_rcv`` rules: the I flag is required
        (:class:`~pyvxlan.MissingIFlagError`) and any reserved bit is rejected
        (:class:`~pyvxlan.ReservedBitsError`); with ``gbp=True`` the G bit and bytes 1-3 are in
        use, as on a Linux device created with ``gbp``. (The parameters are not keyword-only:
        CPython 3.11 does not specialise calls to such functions, about 25 ns a decode.)

        >>> VxlanHeader.decode(bytes.fromhex("0000000000000a00"), strict=True)
        Traceback (most recent call last):
        ...
        pyvxlan.errors.MissingIFlagError: vxlan at offset 0: I flag (VNI valid) is clear
        """
        # The usual call, 8 bytes of exact bytes, needs no copy into a view; anything else (a longer
        # buffer, an offset, a memoryview) goes through _eight_bytes.
        if offset or type(data) is not bytes or len(data) != HEADER_LEN or type(offset) is not int:
            data = _eight_bytes(data, offset, "vxlan")
        # Identity tests: the usual lenient call pays two compares for checking both flags.
        if strict is not False or (gbp is not False and gbp is not True):
            if check_bool(strict, "strict"):
                _check_strict(data, check_bool(gbp, "gbp"), offset)
            check_bool(gbp, "gbp")
        # Not through __init__, which builds a header from fields: the bytes are the header.
        h = _new(VxlanHeader)
        h._wire = data
        return h

    @staticmethod
    def from_words(word0: int, word1: int) -> VxlanHeader:
        """The header whose two big-endian 32-bit words are ``word0`` and ``word1``.

        >>> VxlanHeader.from_words(0x08000000, 0x00000A00)
        VxlanHeader(vni=10)
        """
        return VxlanHeader.decode(_packed_words(word0, word1))

    @property
    def group_policy(self) -> GroupPolicy | None:
        """The GBP fields when the G bit is set, else ``None``."""
        w0 = _unpack(self._wire)[0]
        if not w0 & FLAG_G:
            return None
        return GroupPolicy(policy_id=w0 & GBP_ID_MASK, dont_learn=bool(w0 & GBP_D), policy_applied=bool(w0 & GBP_A))

    @property
    def reserved(self) -> int:
        """The set bits that RFC 7348 (and GBP, when G is set) call reserved, as a 64-bit mask."""
        w0, w1 = _unpack(self._wire)
        used0 = FLAG_I | (FLAG_G | GBP_D | GBP_A | GBP_ID_MASK if w0 & FLAG_G else 0)
        return ((w0 & ~used0 & 0xFFFFFFFF) << 32) | (w1 & RESERVED1)

    @property
    def carries_ethernet(self) -> bool:
        """Whether the payload is an Ethernet frame: always, for RFC 7348 (GPE: see its header)."""
        return True

    def with_fields(
        self,
        *,
        vni: int | None = None,
        group_policy: GroupPolicy | None | bool = False,
        i_flag: bool | None = None,
    ) -> VxlanHeader:
        """A copy with some fields changed; ``group_policy=None`` removes GBP. Reserved bits are kept.

        >>> VxlanHeader(10).with_fields(vni=20, group_policy=GroupPolicy(7))
        VxlanHeader(vni=20, group_policy=GroupPolicy(policy_id=7, dont_learn=False, policy_applied=False))
        """
        w0, w1 = _unpack(self._wire)
        if group_policy is not False and group_policy is not None and type(group_policy) is not GroupPolicy:
            raise ConfigError("group_policy", f"must be a GroupPolicy or None, got {describe(group_policy)}")
        if i_flag is not None:
            check_bool(i_flag, "i_flag")
        if vni is not None:
            w1 = (_check_vni(vni) << 8) | (w1 & RESERVED1)
        if i_flag is not None:
            w0 = (w0 | FLAG_I) if i_flag else (w0 & ~FLAG_I)
        if group_policy is not False:
            w0 &= ~(FLAG_G | GBP_D | GBP_A | GBP_ID_MASK)
            if isinstance(group_policy, GroupPolicy):
                w0 |= group_policy.word0_bits
        return VxlanHeader.decode(_pack(w0 & 0xFFFFFFFF, w1))

    def __repr__(self) -> str:
        parts = [f"vni={self.vni}"]
        gp = self.group_policy
        if gp is not None:
            parts.append(f"group_policy={gp!r}")
        if not self.i_flag:
            parts.append("i_flag=False")
        if self.reserved:
            parts.append(f"reserved={self.reserved:#018x}")
        return f"VxlanHeader({', '.join(parts)})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (VxlanHeader.decode, (self._wire,))


def _check_strict(data: bytes, gbp: bool, offset: int) -> None:
    # Linux vxlan_rcv order: I flag first, then the reserved-bits mask of the device.
    word0, word1 = _unpack(data)
    if not word0 & FLAG_I:
        raise MissingIFlagError("vxlan", offset, "I flag (VNI valid) is clear")
    bad = ((word0 & (RESERVED0_GBP if gbp else RESERVED0)) << 32) | (word1 & RESERVED1)
    if bad:
        raise ReservedBitsError(
            "vxlan",
            offset,
            f"reserved bits {bad:#018x} are set"
            + ("" if gbp or not word0 & FLAG_G else " (G bit set but GBP is not enabled)"),
        )


class GpeNextProtocol(enum.IntEnum):
    """VXLAN-GPE next protocol, as Linux (tun_proto.h) and Wireshark read it; 5 is MPLS there."""

    IPV4 = 1
    IPV6 = 2
    ETHERNET = 3
    NSH = 4
    MPLS = 5


@final
class GpeHeader(_Header):
    """A VXLAN-GPE header (draft-ietf-nvo3-vxlan-gpe, UDP port 4790), an immutable value holding
    its 8 wire bytes.

    >>> g = GpeHeader(vni=4660, next_protocol=GpeNextProtocol.NSH)
    >>> g.encode().hex()
    '0c00000400123400'
    >>> GpeHeader.decode(g.encode()).next_protocol
    <GpeNextProtocol.NSH: 4>

    Equality and hashing go by type and bytes, as for :class:`VxlanHeader`: a ``GpeHeader``
    never equals a ``VxlanHeader`` or plain ``bytes`` with the same 8 bytes.
    """

    __slots__ = ()

    def __init__(
        self,
        vni: int = 0,
        *,
        next_protocol: GpeNextProtocol | int = GpeNextProtocol.ETHERNET,
        version: int = 0,
        i_flag: bool = True,
        p_flag: bool = True,
        bum: bool = False,
        oam: bool = False,
        reserved: int = 0,
    ) -> None:
        _check_vni(vni)
        check_int(version, "version", 0, 3)
        check_int(next_protocol, "next_protocol", 0, 0xFF)
        for name, flag in (("i_flag", i_flag), ("p_flag", p_flag), ("bum", bum), ("oam", oam)):
            check_bool(flag, name)
        _check_reserved(reserved, (GPE_RESERVED0 << 32) | RESERVED1)
        word0 = (
            (version << 28)
            | (FLAG_I if i_flag else 0)
            | (GPE_P if p_flag else 0)
            | (GPE_B if bum else 0)
            | (GPE_O if oam else 0)
            | int(next_protocol)
            | (reserved >> 32)
        )
        self._wire = _pack(word0, (vni << 8) | (reserved & RESERVED1))

    @staticmethod
    def decode(data: bytes | bytearray | memoryview, strict: bool = False, offset: int = 0) -> GpeHeader:
        """Decode 8 bytes; ``strict=True`` applies a Linux GPE device's receive rules.

        Strict: I flag required, version 0, P flag required, O (OAM) rejected, and every bit Linux
        does not use rejected (the B bit included: Linux treats it as reserved).

        >>> GpeHeader.decode(bytes.fromhex("0d00000300000100"), strict=True)
        Traceback (most recent call last):
        ...
        pyvxlan.errors.ReservedBitsError: vxlan-gpe at offset 0: O flag (OAM) is set; Linux drops OAM
        """
        if offset or type(data) is not bytes or len(data) != HEADER_LEN or type(offset) is not int:
            data = _eight_bytes(data, offset, "vxlan-gpe")
        if strict is not False and check_bool(strict, "strict"):
            w0, w1 = _unpack(data)
            if not w0 & FLAG_I:
                raise MissingIFlagError("vxlan-gpe", offset, "I flag (VNI valid) is clear")
            if w0 & GPE_VER_MASK:
                raise ReservedBitsError("vxlan-gpe", offset, f"version {(w0 >> 28) & 3} is not 0")
            if not w0 & GPE_P:
                raise ReservedBitsError("vxlan-gpe", offset, "P flag (next protocol present) is clear")
            if w0 & GPE_O:
                raise ReservedBitsError("vxlan-gpe", offset, "O flag (OAM) is set; Linux drops OAM")
            bad = ((w0 & ~GPE_LINUX_USED0 & 0xFFFFFFFF) << 32) | (w1 & RESERVED1)
            if bad:
                raise ReservedBitsError("vxlan-gpe", offset, f"reserved bits {bad:#018x} are set")
        g = _new(GpeHeader)
        g._wire = data
        return g

    @staticmethod
    def from_words(word0: int, word1: int) -> GpeHeader:
        """The header whose two big-endian 32-bit words are ``word0`` and ``word1``."""
        return GpeHeader.decode(_packed_words(word0, word1))

    @property
    def version(self) -> int:
        return (_unpack(self._wire)[0] & GPE_VER_MASK) >> 28

    @property
    def p_flag(self) -> bool:
        """Next protocol present; when clear the draft says the payload is Ethernet."""
        return bool(_unpack(self._wire)[0] & GPE_P)

    @property
    def bum(self) -> bool:
        """The B bit of draft-12 (broadcast, unknown unicast, multicast); reserved to Linux."""
        return bool(_unpack(self._wire)[0] & GPE_B)

    @property
    def oam(self) -> bool:
        return bool(_unpack(self._wire)[0] & GPE_O)

    @property
    def next_protocol(self) -> GpeNextProtocol | int:
        """The next protocol as an enum member, or the raw value when it is not one."""
        np = self._wire[3]
        try:
            return GpeNextProtocol(np)
        except ValueError:
            return np

    @property
    def carries_ethernet(self) -> bool:
        """Whether the payload is an Ethernet frame: next protocol Ethernet, or P clear (the draft
        then says the payload is Ethernet)."""
        w0 = _unpack(self._wire)[0]
        return (w0 & GPE_NP_MASK) == GpeNextProtocol.ETHERNET or not w0 & GPE_P

    @property
    def reserved(self) -> int:
        """The set reserved bits, as a 64-bit mask."""
        w0, w1 = _unpack(self._wire)
        return ((w0 & GPE_RESERVED0) << 32) | (w1 & RESERVED1)

    def __repr__(self) -> str:
        np = self.next_protocol
        np_text = f"GpeNextProtocol.{np.name}" if isinstance(np, GpeNextProtocol) else str(np)
        parts = [f"vni={self.vni}", f"next_protocol={np_text}"]
        for name, value, default in (
            ("version", self.version, 0),
            ("i_flag", self.i_flag, True),
            ("p_flag", self.p_flag, True),
            ("bum", self.bum, False),
            ("oam", self.oam, False),
        ):
            if value != default:
                parts.append(f"{name}={value!r}")
        if self.reserved:
            parts.append(f"reserved={self.reserved:#018x}")
        return f"GpeHeader({', '.join(parts)})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (GpeHeader.decode, (self._wire,))
