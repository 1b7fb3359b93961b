"""What to scan: targets (hosts, addresses, CIDRs, ranges, host:port, @file) and ports.

Expansion is lazy, so a /16 never sits in memory as a list, and ordered in blocks of hosts
taken port by port: the first probes of a run touch many different hosts, which lets the
scanner learn which hosts are dead before it has queued every port of one of them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from certwarden.errors import ParseError, UsageError
from certwarden.x509.parse import read_limited


class Starttls(StrEnum):
    SMTP = "smtp"
    IMAP = "imap"
    POP3 = "pop3"
    FTP = "ftp"
    LDAP = "ldap"
    XMPP = "xmpp"
    POSTGRES = "postgres"
    MYSQL = "mysql"


# Ports whose service speaks plaintext first and upgrades: what `--starttls auto` uses.
STARTTLS_PORTS: dict[int, Starttls] = {
    25: Starttls.SMTP, 587: Starttls.SMTP, 2525: Starttls.SMTP,
    143: Starttls.IMAP, 110: Starttls.POP3, 21: Starttls.FTP, 389: Starttls.LDAP,
    5222: Starttls.XMPP, 5269: Starttls.XMPP, 5432: Starttls.POSTGRES, 3306: Starttls.MYSQL,
}

# Common implicit-TLS and STARTTLS ports (HTTPS, LDAPS, IMAPS, POP3S, SMTPS, submission,
# mail, FTP, XMPP, PostgreSQL, MySQL, RDP, Kubernetes API, alternates).
DEFAULT_PORTS: tuple[int, ...] = (443, 8443, 636, 993, 995, 465, 25, 587, 110, 143, 21, 389,
                                  5222, 5432, 3306, 3389, 6443, 9443, 4443, 8883, 5671, 5986)

# A scan of more addresses than this is a typo more often than a plan.
MAX_ADDRESSES = 1 << 20
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)"
                       r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$")
_RANGE = re.compile(r"^(\d{1,3}\.\d{1,3}\.\d{1,3}\.)(\d{1,3})-(\d{1,3})$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    host: str
    port: int
    sni: str | None = None
    starttls: Starttls | None = None  # None: implicit TLS (or decided by `auto`)


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetSpec:
    """One parsed target: a set of hosts, and a port when the target named one."""

    text: str
    hosts: tuple[str, ...] | ipaddress.IPv4Network | ipaddress.IPv6Network | range
    prefix: str = ""  # for a.b.c.d-e ranges
    port: int | None = None
    sni: str | None = None  # NAME@TARGET: the name to send on every port of this target only

    def __len__(self) -> int:
        if isinstance(self.hosts, ipaddress.IPv4Network | ipaddress.IPv6Network):
            return _net_size(self.hosts)
        return len(self.hosts)

    def __iter__(self) -> Iterator[str]:
        if isinstance(self.hosts, range):
            return (f"{self.prefix}{n}" for n in self.hosts)
        if isinstance(self.hosts, ipaddress.IPv4Network | ipaddress.IPv6Network):
            net = self.hosts
            if net.num_addresses <= 2:
                return (str(a) for a in net)
            return (str(a) for a in net.hosts())
        return iter(self.hosts)


def _net_size(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> int:
    n = net.num_addresses
    if n <= 2:
        return n
    return n - 2 if net.version == 4 else n - 1


def parse_ports(text: str) -> tuple[int, ...]:
    """``443,8443,1000-1010`` -> ports in the order given, without repeats."""
    ports: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise UsageError(f"bad port {part!r} in --ports (want N, N-M, comma separated)")
        a, b = int(lo), int(hi) if sep else int(lo)
        if not (0 < a <= b < 65536):
            raise UsageError(f"bad port range {part!r} (ports are 1-65535, low-high)")
        ports.extend(range(a, b + 1))
    if not ports:
        raise UsageError("--ports names no port")
    return tuple(dict.fromkeys(ports))


def parse_target(text: str) -> TargetSpec:
    """One target: hostname, IPv4/IPv6, CIDR, a.b.c.d-e, host:port, [v6]:port.

    ``NAME@TARGET`` sends NAME as the SNI (and checks it as the name) on every port of that
    target, and only there: ``app.internal@10.0.0.5:8443``.
    """
    t = text.strip()
    if not t:
        raise UsageError("empty target")
    if "@" in t:
        name, _, rest = t.partition("@")
        name = name.strip().rstrip(".").lower()
        if not name or not _HOSTNAME.match(name) or is_ip(name):
            raise UsageError(f"target {text!r}: NAME@TARGET needs a host name before @ "
                             "(an SNI cannot be an IP address)")
        spec = parse_target(rest)
        if spec.sni is not None:
            raise UsageError(f"target {text!r}: one NAME@ per target")
        return dataclasses.replace(spec, text=text, sni=name)
    port: int | None = None
    if t.startswith("["):
        end = t.find("]")
        if end < 0:
            raise UsageError(f"target {text!r}: unclosed [ in IPv6 address")
        rest = t[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise UsageError(f"target {text!r}: expected ]:port")
            port = _port(text, rest[1:])
        t = t[1:end]
    elif t.count(":") == 1:
        t, p = t.split(":")
        port = _port(text, p)
    if "/" in t:
        try:
            net = ipaddress.ip_network(t, strict=False)
        except ValueError:
            raise UsageError(f"target {text!r}: not a CIDR network") from None
        if _net_size(net) > MAX_ADDRESSES:
            raise UsageError(f"target {text!r}: {net.num_addresses} addresses is more than "
                             f"{MAX_ADDRESSES}; split it")
        return TargetSpec(text=text, hosts=net, port=port)
    m = _RANGE.match(t)
    if m:
        lo, hi = int(m.group(2)), int(m.group(3))
        try:
            ipaddress.IPv4Address(m.group(1) + m.group(2))
        except ValueError:
            raise UsageError(f"target {text!r}: not an IPv4 range") from None
        if not lo <= hi <= 255:
            raise UsageError(f"target {text!r}: range must be low-high within 0-255")
        return TargetSpec(text=text, hosts=range(lo, hi + 1), prefix=m.group(1), port=port)
    try:
        return TargetSpec(text=text, hosts=(str(ipaddress.ip_address(t)),), port=port)
    except ValueError:
        pass
    if not _HOSTNAME.match(t) or t.replace(".", "").isdigit():
        raise UsageError(f"target {text!r}: not a hostname, address, CIDR or range")
    return TargetSpec(text=text, hosts=(t.rstrip(".").lower(),), port=port)


def _port(target: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"target {target!r}: bad port {text!r}")
    return int(text)


MAX_TARGET_FILE = 64 * 1024 * 1024  # millions of lines; /dev/zero or an endless pipe is refused


def read_targets(items: Sequence[str]) -> list[TargetSpec]:
    """Parse every target; ``@file`` reads one target per line (``#`` starts a comment)."""
    out: list[TargetSpec] = []
    for item in items:
        if item.startswith("@"):
            path = Path(item[1:])
            try:
                lines = read_limited(str(path), MAX_TARGET_FILE, what="a target list"
                                     ).decode("utf-8").splitlines()
            except (ParseError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "reason", None) or "not a UTF-8 text file"
                raise UsageError(f"target file {str(path)!r}: {reason}") from None
            for n, line in enumerate(lines, start=1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                if line.startswith("@"):
                    raise UsageError(f"{path}:{n}: nested @file is not supported")
                try:
                    out.append(parse_target(line))
                except UsageError as exc:
                    raise UsageError(f"{path}:{n}: {exc}") from None
        else:
            out.append(parse_target(item))
    if not out:
        raise UsageError("no target to scan")
    return out


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def count_endpoints(specs: Sequence[TargetSpec], ports: Sequence[int],
                    snis: Sequence[str] = ()) -> int:
    per = max(1, len(snis))
    return sum(len(s) * (1 if s.port else len(ports)) * (1 if s.sni else per) for s in specs)


def endpoints(specs: Sequence[TargetSpec], ports: Sequence[int], *,
              snis: Sequence[str] = (), starttls: Starttls | None = None,
              block: int = 256) -> Iterator[Endpoint]:
    """Every endpoint once, lazily: hosts in blocks of ``block``, each block port by port."""
    # Overlapping targets (``::1`` and ``[::1]:443``) would probe twice; remembering what was
    # yielded costs memory, so only for estates of a size a set holds without thought.
    seen: set[Endpoint] | None = (set() if len(specs) > 1
                                  and count_endpoints(specs, ports, snis) <= 1_000_000 else None)
    for ep in _endpoints(specs, ports, snis=snis, starttls=starttls, block=block):
        if seen is not None:
            if ep in seen:
                continue
            seen.add(ep)
        yield ep


def _endpoints(specs: Sequence[TargetSpec], ports: Sequence[int], *, snis: Sequence[str],
               starttls: Starttls | None, block: int) -> Iterator[Endpoint]:
    for spec in specs:
        spec_ports = (spec.port,) if spec.port else tuple(ports)
        hosts = iter(spec)
        while True:
            chunk = [h for _, h in zip(range(block), hosts, strict=False)]
            if not chunk:
                break
            for port in spec_ports:
                for host in chunk:
                    # A target's own NAME@ wins; --sni applies to the targets without one.
                    names: Sequence[str | None] = (
                        (spec.sni,) if spec.sni else snis or (None if is_ip(host) else host,))
                    for sni in names:
                        yield Endpoint(host=host, port=port, sni=sni, starttls=starttls)
