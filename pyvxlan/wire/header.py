"""VXLAN headers: RFC 7348, Group Based Policy, and VXLAN-GPE, as 8-byte values.

Both header types are immutable ``bytes`` subclasses holding the header's 8 wire bytes. That makes
``decode`` lossless for any 8 bytes and keeps it cheap: a decode checks its input and wraps the
bytes in one C-level call, and every field is read from the bytes on access. (A frozen dataclass
costs about nine times a bare unpack, a tuple subclass of the two words about 2.7 times; see
``docs/performance.md``.)

Calling a header class builds a header from its fields (``VxlanHeader(vni=10)``); that goes through
the metaclass's ``__call__``, so that ``decode`` can reach ``bytes``' own constructor directly.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, cast, final

from pyvxlan.errors import ConfigError, MissingIFlagError, ReservedBitsError, TruncatedError

__all__ = [
    "HEADER_LEN",
    "GpeHeader",
    "GpeNextProtocol",
    "GroupPolicy",
    "VxlanHeader",
]

HEADER_LEN: Final = 8
VNI_MAX: Final = (1 << 24) - 1

# Word-0 bits, named as in Linux's include/net/vxlan.h (bit 0 of the RFC diagram is the MSB).
FLAG_I: Final = 0x08000000  # VXLAN_HF_VNI
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

_HDR: Final = struct.Struct("!II")
# Typed: struct's unpack returns tuple[Any, ...] to type checkers.
_unpack: Final = cast("Callable[..., tuple[int, int]]", _HDR.unpack_from)
_pack = _HDR.pack


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


class _HeaderType(type):
    """The metaclass of the header types: it keeps a header class's ``__new__`` aside.

    A header class's ``__new__`` builds a header from fields (``VxlanHeader(vni=10)``); the
    metaclass moves it to ``_from_fields`` and calls it from its own ``__call__``, so that the
    class's constructor stays ``bytes``' C one. ``decode`` calls that constructor as
    ``type.__call__`` bound to the class, which skips this Python-level ``__call__``. Left as the
    class's ``__new__``, the field constructor would put ``bytes.__new__``'s wrapper (about 15 ns, a
    tenth of a decode; bench/codec.py) in every decode.
    """

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> _HeaderType:
        namespace["_from_fields"] = staticmethod(namespace.pop("__new__"))
        return super().__new__(mcs, name, bases, namespace)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls._from_fields(cls, *args, **kwargs)  # type: ignore[attr-defined]

    @property
    def __signature__(cls) -> Any:
        """The field constructor's signature, for ``help()`` and ``inspect`` (not ``*args, **kwargs``)."""
        import inspect  # only when asked: the module is not needed to decode

        sig = inspect.signature(cls._from_fields)  # type: ignore[attr-defined]
        return sig.replace(parameters=list(sig.parameters.values())[1:])


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


def _decode_vxlan(
    data: bytes | bytearray | memoryview,
    strict: bool = False,
    gbp: bool = False,
    offset: int = 0,
) -> VxlanHeader:
    """Decode the 8 bytes at ``offset``.

    Lenient (the default) reads as RFC 7348 says: reserved bits are ignored but reported in
    ``reserved``. ``strict=True`` applies Linux's ``vxlan_rcv`` rules: the I flag is required
    (:class:`~pyvxlan.MissingIFlagError`) and any reserved bit is rejected
    (:class:`~pyvxlan.ReservedBitsError`); with ``gbp=True`` the G bit and bytes 1-3 are in use,
    as on a Linux device created with ``gbp``.

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
    if strict is False and (gbp is False or gbp is True):
        return _wrap_vxlan(data)
    if check_bool(strict, "strict"):
        _check_strict(data, check_bool(gbp, "gbp"), offset)
    check_bool(gbp, "gbp")
    return _wrap_vxlan(data)


@final
class VxlanHeader(bytes, metaclass=_HeaderType):
    """An RFC 7348 VXLAN header, with the Group Based Policy extension when G is set.

    >>> h = VxlanHeader(vni=10)
    >>> h.encode().hex()
    '0800000000000a00'
    >>> VxlanHeader.decode(bytes.fromhex("0800000000000a00")) == h
    True

    A header is its 8 wire bytes (``len(h) == 8``, ``h + inner`` is a UDP payload), so ``decode``
    then ``encode`` gives back any 8 bytes unchanged; reserved bits are kept and ``reserved``
    reports them. ``strict=True`` applies Linux's receive rules instead of RFC 7348's "ignore".
    Headers equal only headers of the same type (a ``GpeHeader`` with the same bytes is not equal).
    """

    __slots__ = ()

    if TYPE_CHECKING:
        # Type checkers see decode's keyword-only signature; at run time its parameters are
        # positional-or-keyword (CPython 3.11 does not specialise calls to functions with
        # keyword-only parameters: about 25 ns a call; bench/codec.py and docs/performance.md).
        @staticmethod
        def decode(  # type: ignore[override]  # the header's decoder; a header is not text
            data: bytes | bytearray | memoryview, *, strict: bool = False, gbp: bool = False, offset: int = 0
        ) -> VxlanHeader: ...

    else:
        _decode_vxlan.__name__, _decode_vxlan.__qualname__ = "decode", "VxlanHeader.decode"
        decode = staticmethod(_decode_vxlan)

    def __new__(
        cls,
        vni: int = 0,
        *,
        group_policy: GroupPolicy | None = None,
        i_flag: bool = True,
        reserved: int = 0,
    ) -> VxlanHeader:
        # Moved to _from_fields by _HeaderType; the class's own constructor is bytes'.
        _check_vni(vni)
        if group_policy is not None and type(group_policy) is not GroupPolicy:
            raise ConfigError("group_policy", f"must be a GroupPolicy or None, got {describe(group_policy)}")
        check_bool(i_flag, "i_flag")
        # Exactly the complement of what ``reserved`` reports, so that any decoded header can be
        # rebuilt from its fields; G is never reserved (it would turn the header into GBP).
        used0 = FLAG_I | FLAG_G | (GBP_D | GBP_A | GBP_ID_MASK if group_policy else 0)
        _check_reserved(reserved, ((~used0 & 0xFFFFFFFF) << 32) | 0xFF)
        word0 = (FLAG_I if i_flag else 0) | (group_policy.word0_bits if group_policy else 0)
        return _wrap_vxlan(_pack(word0 | (reserved >> 32), (vni << 8) | (reserved & 0xFF)))

    @staticmethod
    def from_words(word0: int, word1: int) -> VxlanHeader:
        """The header whose two big-endian 32-bit words are ``word0`` and ``word1``.

        >>> VxlanHeader.from_words(0x08000000, 0x00000A00)
        VxlanHeader(vni=10)
        """
        return _wrap_vxlan(_packed_words(word0, word1))

    # Field access: computed from the bytes, so that decoding stays one wrap.
    @property
    def word0(self) -> int:
        """Bytes 0-3 as a big-endian integer: flags and, with GBP, the policy fields."""
        return _unpack(self)[0]

    @property
    def word1(self) -> int:
        """Bytes 4-7 as a big-endian integer: the VNI and the last reserved byte."""
        return _unpack(self)[1]

    @property
    def vni(self) -> int:
        """The 24-bit VXLAN Network Identifier."""
        return _unpack(self)[1] >> 8

    @property
    def i_flag(self) -> bool:
        """The I flag: the VNI is valid (RFC 7348 requires it on transmit)."""
        return bool(self[0] & 0x08)

    @property
    def flags(self) -> int:
        """Byte 0, the flags byte (0x08 for a plain header)."""
        return self[0]

    @property
    def group_policy(self) -> GroupPolicy | None:
        """The GBP fields when the G bit is set, else ``None``."""
        w0 = _unpack(self)[0]
        if not w0 & FLAG_G:
            return None
        return GroupPolicy(policy_id=w0 & GBP_ID_MASK, dont_learn=bool(w0 & GBP_D), policy_applied=bool(w0 & GBP_A))

    @property
    def reserved(self) -> int:
        """The set bits that RFC 7348 (and GBP, when G is set) call reserved, as a 64-bit mask."""
        w0, w1 = _unpack(self)
        used0 = FLAG_I | (FLAG_G | GBP_D | GBP_A | GBP_ID_MASK if w0 & FLAG_G else 0)
        return ((w0 & ~used0 & 0xFFFFFFFF) << 32) | (w1 & 0xFF)

    def encode(self) -> bytes:
        """The 8 bytes of this header, as plain ``bytes``."""
        return bytes(self)

    def with_fields(
        self,
        *,
        vni: int | None = None,
        group_policy: GroupPolicy | None | bool = False,
        i_flag: bool | None = None,
    ) -> VxlanHeader:
        """A copy with some fields changed; ``group_policy=None`` removes GBP. Reserved bits are kept.

        (Not ``replace``: a header is ``bytes``, and ``bytes.replace`` keeps its meaning.)

        >>> VxlanHeader(10).with_fields(vni=20, group_policy=GroupPolicy(7))
        VxlanHeader(vni=20, group_policy=GroupPolicy(policy_id=7, dont_learn=False, policy_applied=False))
        """
        w0, w1 = _unpack(self)
        if group_policy is not False and group_policy is not None and type(group_policy) is not GroupPolicy:
            raise ConfigError("group_policy", f"must be a GroupPolicy or None, got {describe(group_policy)}")
        if i_flag is not None:
            check_bool(i_flag, "i_flag")
        if vni is not None:
            w1 = (_check_vni(vni) << 8) | (w1 & 0xFF)
        if i_flag is not None:
            w0 = (w0 | FLAG_I) if i_flag else (w0 & ~FLAG_I)
        if group_policy is not False:
            w0 &= ~(FLAG_G | GBP_D | GBP_A | GBP_ID_MASK)
            if isinstance(group_policy, GroupPolicy):
                w0 |= group_policy.word0_bits
        return _wrap_vxlan(_pack(w0 & 0xFFFFFFFF, w1))

    def __eq__(self, other: object) -> bool:
        return type(other) is VxlanHeader and bytes.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash((VxlanHeader, bytes(self)))

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

    __str__ = __repr__  # bytes' own str() would print b'...'

    def __reduce__(self) -> tuple[Any, ...]:
        return (VxlanHeader.decode, (bytes(self),))


# ``VxlanHeader(raw)`` through C: type.__call__ bound to the class runs bytes' constructor, and not
# _HeaderType.__call__ (which reads its arguments as fields).
_wrap_vxlan: Final = cast("Callable[[bytes], VxlanHeader]", type.__call__.__get__(VxlanHeader))


def _check_strict(data: bytes, gbp: bool, offset: int) -> None:
    # Linux vxlan_rcv order: I flag first, then the reserved-bits mask of the device.
    word0, word1 = _unpack(data)
    if not word0 & FLAG_I:
        raise MissingIFlagError("vxlan", offset, "I flag (VNI valid) is clear")
    used0 = FLAG_I | (GBP_USED if gbp else 0)
    bad = ((word0 & ~used0 & 0xFFFFFFFF) << 32) | (word1 & 0xFF)
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


def _decode_gpe(data: bytes | bytearray | memoryview, strict: bool = False, offset: int = 0) -> GpeHeader:
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
    if strict is False:
        return _wrap_gpe(data)
    if check_bool(strict, "strict"):
        w0, w1 = _unpack(data)
        if not w0 & FLAG_I:
            raise MissingIFlagError("vxlan-gpe", offset, "I flag (VNI valid) is clear")
        if w0 & GPE_VER_MASK:
            raise ReservedBitsError("vxlan-gpe", offset, f"version {(w0 >> 28) & 3} is not 0")
        if not w0 & GPE_P:
            raise ReservedBitsError("vxlan-gpe", offset, "P flag (next protocol present) is clear")
        if w0 & GPE_O:
            raise ReservedBitsError("vxlan-gpe", offset, "O flag (OAM) is set; Linux drops OAM")
        bad = ((w0 & ~GPE_LINUX_USED0 & 0xFFFFFFFF) << 32) | (w1 & 0xFF)
        if bad:
            raise ReservedBitsError("vxlan-gpe", offset, f"reserved bits {bad:#018x} are set")
    return _wrap_gpe(data)


@final
class GpeHeader(bytes, metaclass=_HeaderType):
    """A VXLAN-GPE header (draft-ietf-nvo3-vxlan-gpe, UDP port 4790), held as its 8 wire bytes.

    >>> g = GpeHeader(vni=4660, next_protocol=GpeNextProtocol.NSH)
    >>> g.encode().hex()
    '0c00000400123400'
    >>> GpeHeader.decode(g.encode()).next_protocol
    <GpeNextProtocol.NSH: 4>
    """

    __slots__ = ()

    if TYPE_CHECKING:

        @staticmethod
        def decode(  # type: ignore[override]  # the header's decoder; a header is not text
            data: bytes | bytearray | memoryview, *, strict: bool = False, offset: int = 0
        ) -> GpeHeader: ...

    else:
        _decode_gpe.__name__, _decode_gpe.__qualname__ = "decode", "GpeHeader.decode"
        decode = staticmethod(_decode_gpe)

    def __new__(
        cls,
        vni: int = 0,
        *,
        next_protocol: GpeNextProtocol | int = GpeNextProtocol.ETHERNET,
        version: int = 0,
        i_flag: bool = True,
        p_flag: bool = True,
        bum: bool = False,
        oam: bool = False,
        reserved: int = 0,
    ) -> GpeHeader:
        # Moved to _from_fields by _HeaderType; the class's own constructor is bytes'.
        _check_vni(vni)
        check_int(version, "version", 0, 3)
        check_int(next_protocol, "next_protocol", 0, 0xFF)
        for name, flag in (("i_flag", i_flag), ("p_flag", p_flag), ("bum", bum), ("oam", oam)):
            check_bool(flag, name)
        _check_reserved(reserved, (GPE_RESERVED0 << 32) | 0xFF)
        word0 = (
            (version << 28)
            | (FLAG_I if i_flag else 0)
            | (GPE_P if p_flag else 0)
            | (GPE_B if bum else 0)
            | (GPE_O if oam else 0)
            | int(next_protocol)
            | (reserved >> 32)
        )
        return _wrap_gpe(_pack(word0, (vni << 8) | (reserved & 0xFF)))

    @staticmethod
    def from_words(word0: int, word1: int) -> GpeHeader:
        """The header whose two big-endian 32-bit words are ``word0`` and ``word1``."""
        return _wrap_gpe(_packed_words(word0, word1))

    @property
    def word0(self) -> int:
        """Bytes 0-3 as a big-endian integer: flags, version and next protocol."""
        return _unpack(self)[0]

    @property
    def word1(self) -> int:
        """Bytes 4-7 as a big-endian integer: the VNI and the last reserved byte."""
        return _unpack(self)[1]

    @property
    def vni(self) -> int:
        return _unpack(self)[1] >> 8

    @property
    def version(self) -> int:
        return (self[0] >> 4) & 3

    @property
    def i_flag(self) -> bool:
        return bool(self[0] & 0x08)

    @property
    def p_flag(self) -> bool:
        """Next protocol present; when clear the draft says the payload is Ethernet."""
        return bool(self[0] & 0x04)

    @property
    def bum(self) -> bool:
        """The B bit of draft-12 (broadcast, unknown unicast, multicast); reserved to Linux."""
        return bool(self[0] & 0x02)

    @property
    def oam(self) -> bool:
        return bool(self[0] & 0x01)

    @property
    def next_protocol(self) -> GpeNextProtocol | int:
        """The next protocol as an enum member, or the raw value when it is not one."""
        np = self[3]
        try:
            return GpeNextProtocol(np)
        except ValueError:
            return np

    @property
    def reserved(self) -> int:
        """The set reserved bits, as a 64-bit mask."""
        w0, w1 = _unpack(self)
        return ((w0 & GPE_RESERVED0) << 32) | (w1 & 0xFF)

    def encode(self) -> bytes:
        """The 8 bytes of this header, as plain ``bytes``."""
        return bytes(self)

    def __eq__(self, other: object) -> bool:
        return type(other) is GpeHeader and bytes.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash((GpeHeader, bytes(self)))

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

    __str__ = __repr__

    def __reduce__(self) -> tuple[Any, ...]:
        return (GpeHeader.decode, (bytes(self),))


_wrap_gpe: Final = cast("Callable[[bytes], GpeHeader]", type.__call__.__get__(GpeHeader))
