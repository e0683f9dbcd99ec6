"""Who owns a kernel lab, and removing what labs whose owner is gone left behind (``pyvxlan lab cleanup``).

Every name a lab makes carries its prefix (``pvx`` and four hex digits): namespaces are
``<prefix>-<host, guest or underlay>``, and every interface of a lab lives inside them, so removing the
namespaces removes the veths, bridges and vxlan devices too. A running lab holds a lock
(``/run/pyvxlan/<prefix>.lock``) for its whole life, so :func:`cleanup` tells a lab whose owner is gone
from one still in use, and removes only the first unless forced.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from pyvxlan.errors import BackendError, ConfigError
from pyvxlan.kernel import frr
from pyvxlan.kernel.extra import HAVE_NETLINK, require_kernel_extra

if TYPE_CHECKING or HAVE_NETLINK:  # without pyroute2 nothing here that needs netlink is called
    from pyvxlan.kernel import netlink as nl

__all__ = [
    "LAB_PREFIX",
    "LOCK_DIR",
    "PREFIX_RE",
    "CleanupReport",
    "LabLock",
    "check_prefix",
    "cleanup",
    "lab_links",
    "lab_namespaces",
    "lab_owner",
    "lock_prefixes",
    "new_prefix",
]

#: Names of every lab namespace start with this, then four hex digits and ``-``.
LAB_PREFIX: Final = "pvx"
#: A whole lab prefix.
PREFIX_RE: Final = re.compile(r"pvx[0-9a-f]{4}\Z")


def new_prefix() -> str:
    """A fresh lab prefix: ``pvx`` and four random hex digits."""
    return LAB_PREFIX + secrets.token_hex(2)


def check_prefix(prefix: str) -> str:
    """``prefix`` when it is a lab prefix (``pvx`` and four hex digits); else :class:`~pyvxlan.ConfigError`."""
    if not isinstance(prefix, str) or not PREFIX_RE.match(prefix):
        raise ConfigError("prefix", f"{prefix!r} is not a lab prefix (pvx and four lowercase hex digits, e.g. pvx1a2b)")
    return prefix


# --- ownership: a lock held for a lab's lifetime ------------------------------------------------------

#: Each running lab holds an exclusive ``flock`` on ``LOCK_DIR/<prefix>.lock`` from before its first
#: namespace is made until its last one is gone. The kernel drops the lock when the owner exits,
#: however it exits (SIGKILL included), so a lock nobody holds means the lab's owner is gone.
LOCK_DIR: Final = "/run/pyvxlan"


class LabLock:
    """The lock of lab ``prefix``, held (``flock(LOCK_EX)``) while this object is open.

    Take it with :meth:`acquire`; ``None`` means another process holds it (the lab is running).
    """

    def __init__(self, prefix: str, fd: int, path: str) -> None:
        self.prefix = prefix
        self._fd = fd
        self._path = path

    @staticmethod
    def path(prefix: str) -> str:
        return os.path.join(LOCK_DIR, f"{prefix}.lock")

    @classmethod
    def acquire(cls, prefix: str, *, create: bool = True) -> LabLock | None:
        """The lock of ``prefix``, or ``None`` when a live process holds it. With ``create=False``
        a missing lock file is not made: then a :class:`LabLock` holding nothing is returned."""
        path = cls.path(check_prefix(prefix))
        if create:
            os.makedirs(LOCK_DIR, mode=0o755, exist_ok=True)
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0), 0o644)
            except FileNotFoundError:
                return cls(prefix, -1, path)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            # The previous holder unlinks the file before it lets go: a lock on an unlinked file
            # guards nothing, so take the one now at the path.
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return cls(prefix, fd, path)
            os.close(fd)
            if not create:
                return cls(prefix, -1, path)

    def release(self) -> None:
        """Remove the lock file and let go (in that order: see :meth:`acquire`)."""
        if self._fd >= 0:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)
            os.close(self._fd)
            self._fd = -1


def lab_owner(prefix: str) -> int | None:
    """The pid recorded by the process that holds lab ``prefix``'s lock, if one holds it (0 if it
    wrote none yet); ``None`` when nobody does."""
    lock = LabLock.acquire(prefix, create=False)
    if lock is not None:
        lock.release()
        return None
    try:
        with open(LabLock.path(prefix)) as f:
            text = f.read(32).strip()
    except OSError:
        return 0
    return int(text) if text.isdigit() else 0


@dataclass(frozen=True, slots=True)
class CleanupReport:
    """What :func:`cleanup` did: ``removed`` (``namespace NAME``, ``link NAME``, ``DAEMON pid PID in NS``) and ``kept``
    (one line per live lab it left alone, saying why)."""

    removed: tuple[str, ...]
    kept: tuple[str, ...]


def cleanup(prefix: str | None = None, *, force: bool = False) -> CleanupReport:
    """Remove the namespaces (and prefixed links) of labs whose owner is gone: those of
    ``prefix``, or of every lab. A lab whose owner still runs is left alone unless ``force``.

    Each lab's lock is held while its namespaces go, so no lab can start under that prefix
    meanwhile. Raises :class:`~pyvxlan.PrivilegeError` without root or CAP_NET_ADMIN and
    :class:`~pyvxlan.ConfigError` for a prefix that is not a lab prefix.
    """
    require_kernel_extra()
    if prefix is not None:
        check_prefix(prefix)
    nl.require_privilege("remove lab namespaces")
    namespaces = lab_namespaces(prefix)
    rtnl = nl.Rtnl(None)
    try:
        links = lab_links(rtnl, prefix)
        prefixes = sorted({ns[:7] for ns in namespaces} | {name[:7] for name in links.values()} | lock_prefixes(prefix))
        removed: list[str] = []
        kept: list[str] = []
        for p in prefixes:
            lock = LabLock.acquire(p, create=False)
            if lock is None:
                pid = lab_owner(p)
                owner = f"pid {pid}" if pid else "a process"
                if not force:
                    kept.append(f"lab {p}: its owner ({owner}) is still running; --force removes it")
                    continue
            try:
                # An evpn lab's FRR daemons first (by the pids in its pathspaces), then their files.
                daemons = frr.leftover_daemons(p)
                frr.stop_daemons(daemons)
                removed.extend(f"{d.daemon} pid {d.pid} in {d.ns}" for d in daemons)
                for ns in frr.lab_pathspaces(p):
                    frr.remove_pathspace(ns)
                for ns in namespaces:
                    if ns.startswith(p + "-"):
                        nl.netns_remove(ns)
                        removed.append(f"namespace {ns}")
                for index, name in links.items():
                    if name.startswith(p):
                        try:
                            rtnl.delete(index)
                        except BackendError as exc:
                            if exc.errno != errno.ENODEV:
                                raise OSError(exc.errno, f"cannot remove link {name}: {exc}") from None
                            continue  # the other end of a veth pair removed just before
                        removed.append(f"link {name}")
            finally:
                if lock is not None:
                    lock.release()
    finally:
        rtnl.close()
    return CleanupReport(tuple(removed), tuple(kept))


def lab_links(rtnl: nl.Rtnl, prefix: str | None) -> dict[int, str]:
    """Links in the initial namespace named after ``prefix`` or any lab prefix, by index."""
    return {
        index: name
        for index, name in sorted(rtnl.names().items())
        if PREFIX_RE.match(name[:7]) and (prefix is None or name.startswith(prefix))
    }


def lock_prefixes(prefix: str | None) -> set[str]:
    """Prefixes that have a lock file (a lab whose namespaces may all be gone already)."""
    try:
        names = os.listdir(LOCK_DIR)
    except FileNotFoundError:
        return set()
    found = {n[:-5] for n in names if n.endswith(".lock") and PREFIX_RE.match(n[:-5])}
    return found if prefix is None else found & {prefix}


def lab_namespaces(prefix: str | None = None) -> list[str]:
    """The lab namespaces that exist now: those of ``prefix``, or of every lab."""
    require_kernel_extra()
    pattern = re.compile(re.escape(prefix) + "-" if prefix else r"pvx[0-9a-f]{4}-")
    return [name for name in nl.netns_list() if pattern.match(name)]
