"""The lifecycle configuration file (YAML): deploy recipes, renewal, schedules, notifications.

Checked against a closed schema while it is read: an unknown key, a bad duration or a bad
schedule is refused as ``FILE:LINE: reason`` (``ConfigError``, exit 2 at the CLI), before
anything runs. docs/lifecycle.md has the format with an example.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from certwarden.errors import UsageError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
JOBS = ("scan", "files", "k8s", "renew", "notify")


class ConfigError(UsageError):
    """The config file is refused: where (file and line) and why."""


def parse_duration(value: object) -> dt.timedelta:
    """``90``, ``"90s"``, ``"5m"``, ``"2h"``, ``"7d"`` -> a positive timedelta."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"not a duration: {value!r} (want e.g. 90s, 5m, 2h, 7d)")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds <= 0:
        raise ValueError(f"duration must be above 0: {value!r}")
    return dt.timedelta(seconds=seconds)


def check_cron(expr: object) -> str:
    from croniter import croniter

    text = str(expr)
    if not isinstance(expr, str) or not croniter.is_valid(text):
        raise ValueError(f"not a cron expression: {expr!r} (want five fields, e.g. '*/5 * * * *')")
    return text


# --- the records the rest of lifecycle reads ------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class DeployEntry:
    location: str  # a glob over location URIs
    reload: str | None = None
    verify: tuple[str, ...] = ()
    reload_timeout: float | None = None
    verify_timeout: float | None = None
    files: Mapping[str, Any] = field(default_factory=dict)  # kind -> path (+ alias, ...)
    kubernetes: Mapping[str, Any] | None = None  # deploy k8s locations through the API

    def matches(self, uri: str) -> bool:
        return fnmatch.fnmatchcase(uri, self.location)


@dataclass(frozen=True, slots=True, kw_only=True)
class RenewRule:
    location: str
    renew_before: dt.timedelta | None = None
    key_policy: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RenewalConfig:
    renew_before: dt.timedelta | None = None  # None: at 2/3 of the lifetime
    jitter: float = 0.02  # a random advance of up to this fraction of the lifetime
    retry_base: dt.timedelta = dt.timedelta(minutes=1)
    retry_max: dt.timedelta = dt.timedelta(hours=1)
    attempts: int = 5  # consecutive failures before the state is `failed` and people are told
    key_policy: str = "new"
    profiles: Mapping[str, dt.timedelta] = field(default_factory=dict)  # profile -> renew_before
    locations: tuple[RenewRule, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    name: str
    job: str
    every: dt.timedelta | None = None
    cron: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class EmailConfig:
    host: str
    port: int = 587
    starttls: bool = True
    username: str | None = None
    password_file: str | None = None
    sender: str = "certwarden@localhost"
    to: tuple[str, ...] = ()
    timeout: float = 10.0
    cafile: str | None = None  # trust for the STARTTLS handshake (default: the system's)


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifyConfig:
    thresholds: tuple[int, ...] = (30, 14, 7, 1)
    renewal_done: bool = False
    webhooks: tuple[str, ...] = ()
    email: EmailConfig | None = None
    owners: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    retry_base: dt.timedelta = dt.timedelta(minutes=1)
    retry_max: dt.timedelta = dt.timedelta(hours=1)
    timeout: float = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleConfig:
    deploy: tuple[DeployEntry, ...] = ()
    renewal: RenewalConfig = field(default_factory=RenewalConfig)
    schedules: tuple[Schedule, ...] = ()
    notifications: NotifyConfig = field(default_factory=NotifyConfig)
    policy: str | None = None  # an assessment policy file: its owners route notifications

    def deploy_for(self, uri: str) -> DeployEntry | None:
        """The first ``deploy:`` entry whose glob matches ``uri``."""
        return next((e for e in self.deploy if e.matches(uri)), None)


# --- the schema, checked on the YAML node tree (so every error has its line) -------------

Check = Callable[[Any], Any]
_str: Check = lambda v: _typed(v, str, "a string")  # noqa: E731
_int: Check = lambda v: _typed(v, int, "an integer")  # noqa: E731
_bool: Check = lambda v: _typed(v, bool, "true or false")  # noqa: E731


def _num(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
        raise ValueError(f"want a number above 0, got {v!r}")
    return float(v)


def _typed(v: Any, t: type, what: str) -> Any:
    if not isinstance(v, t) or (t is int and isinstance(v, bool)):
        raise ValueError(f"want {what}, got {v!r}")
    return v


def _tls(v: Any) -> str:
    from certwarden.lifecycle.deploy import parse_tls

    parse_tls(_str(v))
    return str(v)


def _policy(v: Any) -> str:
    if v not in ("new", "reuse"):
        raise ValueError(f"key_policy must be new or reuse, got {v!r}")
    return str(v)


def _job(v: Any) -> str:
    if v not in JOBS:
        raise ValueError(f"unknown job {v!r}; one of: {', '.join(JOBS)}")
    return str(v)


def _jitter(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < 0.5:
        raise ValueError(f"jitter is a fraction of the lifetime in [0, 0.5), got {v!r}")
    return float(v)


_FILES = {"cert": _str, "chain": _str, "fullchain": _str, "key": _str, "pkcs12": _str,
          "jks": _str, "manifest": _str, "password_file": _str, "alias": _str, "der": _bool}
_DEPLOY = {"location": _str, "reload": _str, "verify": [_tls], "reload_timeout": _num,
           "verify_timeout": _num, "files": _FILES,
           "kubernetes": {"kubeconfig": _str, "context": _str}}
_RETRY = {"base": parse_duration, "max": parse_duration, "attempts": _int}
_SCHEMA: dict[str, Any] = {
    "deploy": [_DEPLOY],
    "policy": _str,
    "renewal": {"renew_before": parse_duration, "jitter": _jitter, "retry": _RETRY,
                "key_policy": _policy, "profiles": {"*": {"renew_before": parse_duration}},
                "locations": [{"location": _str, "renew_before": parse_duration,
                               "key_policy": _policy}]},
    "schedules": [{"name": _str, "job": _job, "every": parse_duration, "cron": check_cron,
                   "targets": [_str], "ports": _str, "starttls": _str, "timeout": _num,
                   "paths": [_str], "kubeconfig": _str, "context": _str, "namespace": _str}],
    "notifications": {"thresholds": [_int], "renewal_done": _bool, "webhooks": [_str],
                      "timeout": _num, "retry": _RETRY,
                      "email": {"host": _str, "port": _int, "starttls": _bool,
                                "username": _str, "password_file": _str, "from": _str,
                                "to": [_str], "timeout": _num, "cafile": _str},
                      "owners": {"*": [_str]}},
}
_JOB_OPTIONS = {"scan": {"targets", "ports", "starttls", "timeout"}, "files": {"paths"},
                "k8s": {"kubeconfig", "context", "namespace"}, "renew": set(), "notify": set()}
_REQUIRED = {id(_DEPLOY): ("location",), id(_SCHEMA["schedules"][0]): ("job",),
             id(_SCHEMA["notifications"]["email"]): ("host",)}


def _walk(node: yaml.Node, schema: Any, src: str, where: str) -> Any:
    line = node.start_mark.line + 1

    def err(reason: str, at: yaml.Node = node) -> ConfigError:
        return ConfigError(f"{src}:{at.start_mark.line + 1}: {reason}")

    if isinstance(schema, dict):
        if not isinstance(node, yaml.MappingNode):
            raise err(f"{where or 'the file'} must be a mapping")
        out: dict[str, Any] = {}
        for knode, vnode in node.value:
            key = knode.value
            sub = schema.get(key, schema.get("*"))
            if sub is None:
                known = ", ".join(k for k in schema if k != "*")
                raise err(f"unknown key {key!r} in {where or 'the file'} (known: {known})",
                          knode)
            if key in out:
                raise err(f"{key!r} given twice in {where or 'the file'}", knode)
            out[key] = _walk(vnode, sub, src, f"{where}.{key}" if where else key)
        missing = [k for k in _REQUIRED.get(id(schema), ()) if k not in out]
        if missing:
            raise err(f"{where}: {missing[0]!r} is required")
        return out
    if isinstance(schema, list):
        if not isinstance(node, yaml.SequenceNode):
            raise err(f"{where} must be a list")
        return [_walk(n, schema[0], src, f"{where}[{i}]") for i, n in enumerate(node.value)]
    value = yaml.safe_load(yaml.serialize(node))
    try:
        return schema(value)
    except (ValueError, UsageError) as exc:
        raise ConfigError(f"{src}:{line}: {where}: {exc}") from None


def load(path: str | Path) -> LifecycleConfig:
    src = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{src}: cannot read ({getattr(exc, 'strerror', None) or exc})"
                          ) from None
    return loads(text, source=src)


def loads(text: str, *, source: str = "config") -> LifecycleConfig:
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}{line}: not YAML ({getattr(exc, 'problem', None) or exc})"
                          ) from None
    if node is None:
        return LifecycleConfig()
    raw = _walk(node, _SCHEMA, source, "")
    return _build(raw, source)


def _retry(raw: Mapping[str, Any], base: dt.timedelta, cap: dt.timedelta,
           ) -> tuple[dt.timedelta, dt.timedelta]:
    return raw.get("base", base), raw.get("max", cap)


def _build(raw: Mapping[str, Any], source: str) -> LifecycleConfig:
    deploy = tuple(DeployEntry(location=d["location"], reload=d.get("reload"),
                               verify=tuple(d.get("verify", ())),
                               reload_timeout=d.get("reload_timeout"),
                               verify_timeout=d.get("verify_timeout"),
                               files=dict(d.get("files", {})), kubernetes=d.get("kubernetes"))
                   for d in raw.get("deploy", ()))
    r = raw.get("renewal", {})
    base, cap = _retry(r.get("retry", {}), dt.timedelta(minutes=1), dt.timedelta(hours=1))
    renewal = RenewalConfig(
        renew_before=r.get("renew_before"), jitter=r.get("jitter", 0.02), retry_base=base,
        retry_max=cap, attempts=max(1, r.get("retry", {}).get("attempts", 5)),
        key_policy=r.get("key_policy", "new"),
        profiles={k: v["renew_before"] for k, v in r.get("profiles", {}).items()
                  if "renew_before" in v},
        locations=tuple(RenewRule(location=x["location"], renew_before=x.get("renew_before"),
                                  key_policy=x.get("key_policy"))
                        for x in r.get("locations", ())))
    schedules = []
    jobs = [s["job"] for s in raw.get("schedules", ())]
    for i, s in enumerate(raw.get("schedules", ())):
        if ("every" in s) == ("cron" in s):
            raise ConfigError(f"{source}: schedules[{i}] ({s['job']}): give exactly one of "
                              "'every' or 'cron'")
        opts = {k: v for k, v in s.items() if k not in ("name", "job", "every", "cron")}
        allowed = _JOB_OPTIONS[s["job"]]
        wrong = sorted(set(opts) - allowed)
        if wrong:
            known = ", ".join(sorted(allowed)) or "none"
            raise ConfigError(f"{source}: schedules[{i}] ({s['job']}): {wrong[0]!r} is not an "
                              f"option of this job (its options: {known})")
        need = {"scan": "targets", "files": "paths"}.get(s["job"])
        if need and not opts.get(need):
            raise ConfigError(f"{source}: schedules[{i}] ({s['job']}): {need!r} is required")
        default = s["job"] if jobs.count(s["job"]) == 1 else f"{s['job']}-{i}"
        schedules.append(Schedule(name=s.get("name") or default, job=s["job"],
                                  every=s.get("every"), cron=s.get("cron"), options=opts))
    names = [s.name for s in schedules]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: two schedules have the same name")
    n = raw.get("notifications", {})
    email = None
    if "email" in n:
        e = n["email"]
        email = EmailConfig(host=e["host"], port=e.get("port", 587),
                            starttls=e.get("starttls", True), username=e.get("username"),
                            password_file=e.get("password_file"),
                            sender=e.get("from", "certwarden@localhost"),
                            to=tuple(e.get("to", ())), timeout=e.get("timeout", 10.0),
                            cafile=e.get("cafile"))
    nbase, ncap = _retry(n.get("retry", {}), dt.timedelta(minutes=1), dt.timedelta(hours=1))
    notify = NotifyConfig(thresholds=tuple(sorted(set(n.get("thresholds", (30, 14, 7, 1))),
                                                  reverse=True)),
                          renewal_done=n.get("renewal_done", False),
                          webhooks=tuple(n.get("webhooks", ())), email=email,
                          owners={k: tuple(v) for k, v in n.get("owners", {}).items()},
                          retry_base=nbase, retry_max=ncap, timeout=n.get("timeout", 10.0))
    return LifecycleConfig(deploy=deploy, renewal=renewal, schedules=tuple(schedules),
                           notifications=notify, policy=raw.get("policy"))
