"""The agent: scheduled discovery, renewals and notifications, one round at a time.

Each ``schedules:`` entry of the config is a job with an interval (``every``) or a cron
expression (``cron``); ``renew`` and ``notify`` run every minute when the config does not
schedule them. A round runs every job that is due. Which jobs are due, and who runs one,
lives in the database (``ManagedStore.claim_job`` sets the next run time and a lease in one
compare-and-set), so a restart keeps the schedule and two agents on one database never run
the same slot twice. Every action is one structured (JSON) log line.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from certwarden.errors import CertwardenError
from certwarden.lifecycle.config import LifecycleConfig, Schedule
from certwarden.lifecycle.events import Event, EventKind
from certwarden.lifecycle.notify import Notifier
from certwarden.lifecycle.renew import Renewer
from certwarden.records import Outcome, Sighting
from certwarden.store.inventory import Inventory
from certwarden.store.managed import ManagedStore
from certwarden.x509 import Kind

DEFAULT_EVERY = dt.timedelta(minutes=1)  # renew and notify, when the config says nothing
JOB_LEASE = dt.timedelta(minutes=30)  # a discovery of a big estate takes minutes
_MAX_SLEEP = 5.0  # seconds: how late a SIGTERM may be noticed between rounds, at worst

Log = Callable[[Mapping[str, Any]], None]


def next_run(schedule: Schedule, after: dt.datetime) -> dt.datetime:
    if schedule.every is not None:
        return after + schedule.every
    from croniter import croniter

    nxt: dt.datetime = croniter(str(schedule.cron), after).get_next(dt.datetime)
    return nxt.astimezone(dt.UTC)


def schedules(cfg: LifecycleConfig) -> tuple[Schedule, ...]:
    have = {s.job for s in cfg.schedules}
    extra = tuple(Schedule(name=job, job=job, every=DEFAULT_EVERY)
                  for job in ("renew", "notify") if job not in have)
    return (*cfg.schedules, *extra)


@dataclass(slots=True)
class Agent:
    store: ManagedStore
    inventory: Inventory
    config: LifecycleConfig
    renewer: Renewer
    notifier: Notifier
    owner: str
    log: Log
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))

    def round(self) -> list[dict[str, Any]]:
        """Run every job that is due now; returns one record per job run."""
        done = []
        for sched in schedules(self.config):
            now = self.clock()
            if not self.store.claim_job(sched.name, owner=self.owner, lease=JOB_LEASE, now=now,
                                        next_run_at=next_run(sched, now)):
                continue
            try:
                detail = self._run(sched)
                outcome = "ok"
            except CertwardenError as exc:
                detail, outcome = {"reason": str(exc)}, "failed"
            self.store.job_done(sched.name, owner=self.owner,
                                outcome=f"{outcome}: {detail.get('reason', '')}".strip(": "))
            record = {"action": "job", "job": sched.job, "name": sched.name,
                      "outcome": outcome, **detail}
            self.log(record)
            done.append(record)
        return done

    def run(self, stop: threading.Event) -> None:
        """Rounds until ``stop`` is set (SIGTERM): a job running then finishes first."""
        self.log({"action": "agent-start", "jobs": [s.name for s in schedules(self.config)]})
        while not stop.is_set():
            self.round()
            stop.wait(self._sleep())
        self.log({"action": "agent-stop"})

    def _sleep(self) -> float:
        now = self.clock()
        waits = [(j.next_run_at - now).total_seconds() for s in schedules(self.config)
                 if (j := self.store.job(s.name)) is not None and j.next_run_at is not None]
        return max(0.2, min([_MAX_SLEEP, *waits]))

    # --- the jobs ------------------------------------------------------------------------

    def _run(self, sched: Schedule) -> dict[str, Any]:
        opts = sched.options
        if sched.job == "renew":
            outcomes = self.renewer.run(due_only=True)
            for o in outcomes:
                self.log({"action": "renew", **o.as_dict()})
            return {"renewals": len(outcomes)}
        if sched.job == "notify":
            return self.notify()
        found: list[Sighting] = []

        def keep(item: Sighting | Outcome) -> Sighting | Outcome:
            if isinstance(item, Sighting):
                found.append(item)
            return item

        def seen(_raw: object, item: Sighting | Outcome) -> None:
            keep(item)

        if sched.job == "files":
            from certwarden.discovery.files import sweep

            paths = list(opts.get("paths", ()))
            with self.inventory.record("files", paths) as rec:
                rec.add_all(keep(i) for i in sweep(paths))
        elif sched.job == "k8s":
            from certwarden.discovery.k8s import read_cluster

            with self.inventory.record("k8s", [str(opts.get("context") or "current")]) as rec:
                rec.add_all(keep(i) for i in read_cluster(
                    kubeconfig=opts.get("kubeconfig"), context=opts.get("context"),
                    namespace=opts.get("namespace")))
        else:
            from certwarden.discovery.net import Scanner, ScanOptions
            from certwarden.discovery.targets import (
                DEFAULT_PORTS,
                endpoints,
                parse_ports,
                read_targets,
            )

            targets = list(opts.get("targets", ()))
            ports = parse_ports(str(opts["ports"])) if "ports" in opts else DEFAULT_PORTS
            timeout = float(opts.get("timeout", 3.0))
            options = ScanOptions(connect_timeout=timeout, handshake_timeout=timeout,
                                  starttls=str(opts.get("starttls", "auto")))  # type: ignore[arg-type]
            with self.inventory.record("net", targets) as rec:
                asyncio.run(rec.stream(Scanner(options).scan(
                    endpoints(read_targets(targets), ports)),
                    seen=seen))
        ownerless = self.ownerless(found)
        return {"sightings": len(found), "ownerless_self_signed": ownerless}

    def ownerless(self, found: Sequence[Sighting]) -> int:
        managed = {m.sha256 for m in self.store.all()}
        n = 0
        for sg in found:
            cert = sg.certificate
            if sg.position or cert.kind is not Kind.SELF_SIGNED or cert.sha256 in managed:
                continue
            if self.notifier.owner_of(sg.location.uri) is not None:
                continue
            n += 1
            self.notifier(Event(kind=EventKind.OWNERLESS_SELF_SIGNED, subject=cert.sha256,
                                location=sg.location.uri, names=cert.sans.dns or (
                                    (cert.subject_cn,) if cert.subject_cn else ()),
                                reason="found by a scheduled discovery; nobody owns it"))
        return n

    def notify(self) -> dict[str, Any]:
        """Expiry warnings for what we cannot renew, then every pending delivery."""
        now = self.clock()
        managed = {m.sha256 for m in self.store.all()}
        thresholds = sorted(self.config.notifications.thresholds)
        warned = 0
        for sg in self.inventory.sightings():
            cert = sg.certificate
            if sg.position or cert.is_ca or cert.sha256 in managed:
                continue
            left = cert.not_after - now
            crossed = next((t for t in thresholds if left <= dt.timedelta(days=t)), None)
            if crossed is None:
                continue
            warned += 1
            state = "expired" if left.total_seconds() <= 0 else f"{left.days}d left"
            self.notifier(Event(kind=EventKind.EXPIRING, subject=cert.sha256,
                                threshold=f"{crossed}d", location=sg.location.uri,
                                names=cert.sans.dns, reason=f"not after "
                                f"{cert.not_after:%Y-%m-%d %H:%M}Z ({state})"))
        sent = failed = 0
        for delivery, error in self.notifier.deliver(owner=self.owner):
            self.log({"action": "notify", "event": delivery.event, "channel": delivery.channel,
                      "target": delivery.target, "outcome": "sent" if error is None
                      else "failed", "reason": error})
            sent, failed = sent + (error is None), failed + (error is not None)
        return {"expiring": warned, "sent": sent, "failed": failed}

