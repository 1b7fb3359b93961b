"""Policy as code: thresholds, rules on/off, severity overrides, owners and exceptions.

A policy is YAML. Every value is checked against what it may be, and a malformed policy is
rejected with the line and the reason (``PolicyError``), never half-applied. The built-in
default (``DEFAULT_POLICY_YAML``) is what runs when no ``--policy`` is given.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from certwarden.errors import CertwardenError, ParseError
from certwarden.records import Severity, frozen_map
from certwarden.x509.parse import read_limited

DEFAULT_POLICY_YAML = """\
# certwarden default policy. Copy it, change it, pass it with --policy FILE.
version: 1
thresholds:
  expiring_soon_days: 30          # expiring-soon: a third of the lifetime left, at most this
  cert_sprawl_locations: 5        # the same certificate at this many locations or more
  min_rsa_bits: 2048              # NIST SP 800-131A / CA/B BR 6.1.5
  min_ec_bits: 256
  private_max_validity_days: null # stricter ceiling for private (untrusted) leaves; null = CA/B
trust: system                     # system | certifi | a PEM file or directory
trust_anchors: []                 # extra private roots the organisation trusts
rules: {}                         # rule-id: false to turn a rule off
severity: {}                      # rule-id: info|low|medium|high|critical
owners: []                        # - {match: "tls://*.pay.example:*", team: payments, contact: ...}
exceptions: []                    # - {sha256|location, rules, reason, owner, expires: YYYY-MM-DD}
revocation:                       # `revoked`: our own CA's ledger always; CRL/OCSP only opted in
  fetch: false                    # fetch the CRLs and OCSP responders certificates point to
  allow: []                       # the only hosts (by name) or CIDRs (for IP URLs) fetched from
  timeout_seconds: 5              # per request
  max_bytes: 10485760             # per response; a larger CRL is refused, not truncated
"""


class PolicyError(CertwardenError):
    """A policy that cannot be used as written: names the source, the line and the reason."""

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        where = f"{source}:{line}" if line else source
        super().__init__(f"policy {where}: {reason}")
        self.source = source
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True, kw_only=True)
class Thresholds:
    expiring_soon_days: int = 30
    never_expires_horizon_years: int = 10  # accepted in old policies; no effect (issue 11)
    cert_sprawl_locations: int = 5
    min_rsa_bits: int = 2048
    min_ec_bits: int = 256
    private_max_validity_days: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Owner:
    """Who owns the locations matching ``match`` (an fnmatch glob over the location URI)."""

    match: str
    team: str
    contact: str | None = None
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pattern", re.compile(fnmatch.translate(self.match)))

    def covers(self, location: str) -> bool:
        return self._pattern.match(location) is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Waiver:
    """A policy exception (named so to keep clear of Python's exceptions).

    It silences the listed rules (all rules when ``rules`` is empty) for one certificate
    (``sha256``) or for locations matching a glob, until ``expires``. An expired waiver
    silences nothing and is itself a finding (``exception-expired``).
    """

    reason: str
    owner: str
    expires: dt.date
    sha256: str | None = None
    location: str | None = None
    rules: tuple[str, ...] = ()
    line: int | None = None  # where it is written, for the finding about it
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pat = re.compile(fnmatch.translate(self.location)) if self.location else None
        object.__setattr__(self, "_pattern", pat)

    def active(self, today: dt.date) -> bool:
        return today <= self.expires

    def covers(self, rule: str, sha256: str | None, location: str | None) -> bool:
        if self.rules and rule not in self.rules:
            return False
        if self.sha256 is not None:
            return sha256 == self.sha256
        return (location is not None and self._pattern is not None
                and self._pattern.match(location) is not None)

    @property
    def label(self) -> str:
        return f"sha256 {self.sha256}" if self.sha256 else f"location {self.location}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationFetch:
    """Whether and where CRLs and OCSP answers may be fetched: off, and nowhere, by default."""

    fetch: bool = False
    allow: tuple[str, ...] = ()  # host names, or CIDRs / addresses for URLs with an IP
    timeout_seconds: int = 5
    max_bytes: int = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    source: str = "<built-in default>"
    thresholds: Thresholds = field(default_factory=Thresholds)
    trust: str = "system"
    trust_anchors: tuple[str, ...] = ()
    disabled: frozenset[str] = frozenset()
    severity: Mapping[str, Severity] = field(default_factory=dict)
    owners: tuple[Owner, ...] = ()
    exceptions: tuple[Waiver, ...] = ()
    revocation: RevocationFetch = field(default_factory=RevocationFetch)

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", frozen_map(self.severity))

    def enabled(self, rule_id: str) -> bool:
        return rule_id not in self.disabled

    def severity_of(self, rule_id: str, default: Severity) -> Severity:
        return self.severity.get(rule_id, default)

    def owner_of(self, location: str | None) -> Owner | None:
        if location is None:
            return None
        for owner in self.owners:  # first match wins, as written
            if owner.covers(location):
                return owner
        return None

    def waiver_for(self, rule: str, sha256: str | None, location: str | None,
                   today: dt.date) -> Waiver | None:
        for w in self.exceptions:
            if w.active(today) and w.covers(rule, sha256, location):
                return w
        return None


def default_policy() -> Policy:
    return parse_policy(DEFAULT_POLICY_YAML, source="<built-in default>", known_rules=None)


MAX_POLICY_BYTES = 1024 * 1024  # a policy is a page of YAML; a device or pipe is not one


def load_policy(path: str, *, known_rules: frozenset[str] | None) -> Policy:
    try:
        text = read_limited(path, MAX_POLICY_BYTES, what="a policy").decode("utf-8")
    except ParseError as exc:
        raise PolicyError(path, None, exc.reason) from None
    except UnicodeDecodeError:
        raise PolicyError(path, None, "not UTF-8 text") from None
    return parse_policy(text, source=path, known_rules=known_rules)


# ---- parsing with line numbers: compose the YAML node tree, then check every node ----

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ALLOW_ENTRY = re.compile(r"[A-Za-z0-9.:_-]+(?:/\d{1,3})?")


def parse_policy(text: str, *, source: str, known_rules: frozenset[str] | None) -> Policy:
    """Parse and check a policy. ``known_rules`` (the registry's ids) catches typos."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise PolicyError(source, mark.line + 1 if mark else None,
                          f"not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(source, None, f"not valid YAML: {exc}") from None
    except RecursionError:
        raise PolicyError(source, None, "nested too deeply to be a policy") from None
    if root is None:
        return Policy(source=source)
    p = _Parser(source, known_rules)
    top = p.mapping(root, "the policy")
    allowed = {"version", "thresholds", "trust", "trust_anchors", "rules", "severity", "owners",
               "exceptions", "revocation"}
    p.only(top, allowed, "the policy")
    if "version" in top and p.scalar(top["version"][1], "version") not in (1, "1"):
        p.fail(top["version"][1], "version must be 1")
    return Policy(
        source=source,
        thresholds=p.thresholds(top.get("thresholds")),
        trust=p.text(top, "trust", "the policy", required=False) or "system",
        trust_anchors=tuple(p.strings(top.get("trust_anchors"), "trust_anchors")),
        disabled=p.rules(top.get("rules")),
        severity=p.severities(top.get("severity")),
        owners=tuple(p.owners(top.get("owners"))),
        exceptions=tuple(p.waivers(top.get("exceptions"))),
        revocation=p.revocation(top.get("revocation")),
    )


Entry = tuple[yaml.Node, yaml.Node]  # (key node, value node)


class _Parser:
    def __init__(self, source: str, known_rules: frozenset[str] | None) -> None:
        self.source = source
        self.known = known_rules

    def fail(self, node: yaml.Node, reason: str) -> None:
        raise PolicyError(self.source, node.start_mark.line + 1, reason)

    def mapping(self, node: yaml.Node, what: str) -> dict[str, Entry]:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"{what} must be a mapping")
        out: dict[str, Entry] = {}
        for k, v in node.value:
            key = self.scalar(k, f"a key of {what}")
            if not isinstance(key, str):
                self.fail(k, f"a key of {what} must be text, not {key!r}")
            if key in out:
                self.fail(k, f"{key!r} given twice in {what}")
            out[str(key)] = (k, v)
        return out

    def only(self, entries: dict[str, Entry], allowed: set[str], what: str) -> None:
        for key, (knode, _) in entries.items():
            if key not in allowed:
                self.fail(knode, f"unknown key {key!r} in {what} (known: "
                          f"{', '.join(sorted(allowed))})")

    def scalar(self, node: yaml.Node, what: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, f"{what} must be a single value")
        try:
            return yaml.SafeLoader(" ").construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError) as exc:
            # an unknown tag (!!python/...) or an impossible date (2027-13-45)
            self.fail(node, f"{what}: unreadable value ({' '.join(str(exc).split())[:120]})")

    def sequence(self, entry: Entry | None, what: str) -> list[yaml.Node]:
        if entry is None:
            return []
        node = entry[1]
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, f"{what} must be a list")
        return list(node.value)

    def strings(self, entry: Entry | None, what: str) -> list[str]:
        out = []
        for item in self.sequence(entry, what):
            value = self.scalar(item, f"an item of {what}")
            if not isinstance(value, str) or not value:
                self.fail(item, f"an item of {what} must be non-empty text")
            out.append(value)
        return out

    def integer(self, node: yaml.Node, what: str, *, minimum: int, nullable: bool = False,
                ) -> int | None:
        value = self.scalar(node, what)
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(node, f"{what} must be a whole number, not {value!r}")
        if value < minimum:
            self.fail(node, f"{what} must be at least {minimum}, not {value}")
        return int(value)

    def thresholds(self, entry: Entry | None) -> Thresholds:
        if entry is None or (isinstance(entry[1], yaml.ScalarNode)
                             and entry[1].tag.endswith(":null")):
            return Thresholds()
        entries = self.mapping(entry[1], "thresholds")
        allowed = set(Thresholds.__dataclass_fields__)
        self.only(entries, allowed, "thresholds")
        values: dict[str, int | None] = {}
        for key, (_, vnode) in entries.items():
            values[key] = self.integer(vnode, f"thresholds.{key}", minimum=1,
                                       nullable=key == "private_max_validity_days")
            if values[key] is None and key != "private_max_validity_days":
                self.fail(vnode, f"thresholds.{key} must be a whole number")
        return Thresholds(**values)  # type: ignore[arg-type]  # checked per key above

    def rule_id(self, knode: yaml.Node, key: str, what: str) -> None:
        if self.known is not None and key not in self.known:
            self.fail(knode, f"unknown rule {key!r} in {what}")

    def rules(self, entry: Entry | None) -> frozenset[str]:
        if entry is None:
            return frozenset()
        disabled = set()
        for key, (knode, vnode) in self.mapping(entry[1], "rules").items():
            self.rule_id(knode, key, "rules")
            value = self.scalar(vnode, f"rules.{key}")
            if not isinstance(value, bool):
                self.fail(vnode, f"rules.{key} must be true or false, not {value!r}")
            if not value:
                disabled.add(key)
        return frozenset(disabled)

    def severities(self, entry: Entry | None) -> dict[str, Severity]:
        if entry is None:
            return {}
        out = {}
        for key, (knode, vnode) in self.mapping(entry[1], "severity").items():
            self.rule_id(knode, key, "severity")
            value = self.scalar(vnode, f"severity.{key}")
            try:
                out[key] = Severity.parse(str(value))
            except ValueError as exc:
                self.fail(vnode, f"severity.{key}: {exc}")
        return out

    def text(self, entries: dict[str, Entry], key: str, what: str, *, required: bool,
             ) -> str | None:
        if key not in entries:
            if required:
                raise PolicyError(self.source, None, f"{what} needs {key!r}")
            return None
        node = entries[key][1]
        value = self.scalar(node, f"{what}.{key}")
        if not isinstance(value, str) or not value.strip():
            self.fail(node, f"{what}.{key} must be non-empty text")
        return str(value)

    def revocation(self, entry: Entry | None) -> RevocationFetch:
        if entry is None or (isinstance(entry[1], yaml.ScalarNode)
                             and entry[1].tag.endswith(":null")):
            return RevocationFetch()
        entries = self.mapping(entry[1], "revocation")
        self.only(entries, {"fetch", "allow", "timeout_seconds", "max_bytes"}, "revocation")
        fetch = False
        if "fetch" in entries:
            fetch = self.scalar(entries["fetch"][1], "revocation.fetch")
            if not isinstance(fetch, bool):
                self.fail(entries["fetch"][1], "revocation.fetch must be true or false")
        allow = self.strings(entries.get("allow"), "revocation.allow")
        for item, node in zip(allow, self.sequence(entries.get("allow"), "allow"), strict=True):
            if not _ALLOW_ENTRY.fullmatch(item):
                self.fail(node, f"revocation.allow: {item!r} is neither a host name nor an "
                                "address or CIDR")
            if "/" in item or item.replace(".", "").isdigit() or ":" in item:
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    self.fail(node, f"revocation.allow: {item!r} is not an address or CIDR")
        timeout = self.integer(entries["timeout_seconds"][1], "revocation.timeout_seconds",
                               minimum=1) if "timeout_seconds" in entries else 5
        size = self.integer(entries["max_bytes"][1], "revocation.max_bytes",
                            minimum=1024) if "max_bytes" in entries else 10 * 1024 * 1024
        return RevocationFetch(fetch=bool(fetch), allow=tuple(a.lower() for a in allow),
                               timeout_seconds=int(timeout or 5),
                               max_bytes=int(size or 10 * 1024 * 1024))

    def owners(self, entry: Entry | None) -> list[Owner]:
        out = []
        for item in self.sequence(entry, "owners"):
            entries = self.mapping(item, "an owner")
            self.only(entries, {"match", "team", "contact"}, "an owner")
            for need in ("match", "team"):
                if need not in entries:
                    self.fail(item, f"an owner needs {need!r}")
            out.append(Owner(match=str(self.text(entries, "match", "owner", required=True)),
                             team=str(self.text(entries, "team", "owner", required=True)),
                             contact=self.text(entries, "contact", "owner", required=False)))
        return out

    def waivers(self, entry: Entry | None) -> list[Waiver]:
        out = []
        for item in self.sequence(entry, "exceptions"):
            what = "an exception"
            entries = self.mapping(item, what)
            self.only(entries, {"sha256", "location", "rules", "reason", "owner", "expires"},
                      what)
            for need in ("reason", "owner", "expires"):
                if need not in entries:
                    self.fail(item, f"{what} needs {need!r}")
            if ("sha256" in entries) == ("location" in entries):
                self.fail(item, f"{what} needs exactly one of 'sha256' or 'location'")
            sha = self.text(entries, "sha256", what, required=False)
            if sha is not None:
                sha = sha.lower().replace(":", "")
                if not _SHA256.match(sha):
                    self.fail(entries["sha256"][1], "exception sha256 must be 64 hex digits")
            expires_node = entries["expires"][1]
            expires = self.scalar(expires_node, "exception expires")
            if isinstance(expires, dt.datetime):
                expires = expires.date()
            if not isinstance(expires, dt.date):
                self.fail(expires_node, f"exception expires must be a date YYYY-MM-DD, "
                          f"not {expires!r}")
            rules = self.strings(entries.get("rules"), "exception rules")
            for r, rnode in zip(rules, self.sequence(entries.get("rules"), "rules"), strict=True):
                self.rule_id(rnode, r, "exception rules")
            out.append(Waiver(
                reason=str(self.text(entries, "reason", what, required=True)),
                owner=str(self.text(entries, "owner", what, required=True)),
                expires=expires, sha256=sha,
                location=self.text(entries, "location", what, required=False),
                rules=tuple(rules), line=item.start_mark.line + 1))
        return out
