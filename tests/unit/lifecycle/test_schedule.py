"""Renewal timing, backoff, the config's schedule vocabulary and the agent's next run."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from certwarden.lifecycle import config as lc
from certwarden.lifecycle.agent import next_run, schedules
from certwarden.lifecycle.renew import backoff, renew_before_for, renewal_time

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def test_renews_at_two_thirds_by_default() -> None:
    assert renewal_time(T0, T0 + 30 * DAY, renew_before=None, jitter=0) == T0 + 20 * DAY


def test_renew_before_wins_unless_it_exceeds_the_lifetime() -> None:
    assert renewal_time(T0, T0 + 30 * DAY, renew_before=7 * DAY, jitter=0) == T0 + 23 * DAY
    # Longer than the certificate lives: fall back to 2/3 instead of renewing in a loop.
    assert renewal_time(T0, T0 + 30 * DAY, renew_before=40 * DAY, jitter=0) == T0 + 20 * DAY


def test_jitter_only_advances_within_its_fraction() -> None:
    rng = random.Random(7)
    times = [renewal_time(T0, T0 + 30 * DAY, renew_before=None, jitter=0.1, rng=rng)
             for _ in range(200)]
    assert all(T0 + 17 * DAY <= t <= T0 + 20 * DAY for t in times)
    assert len(set(times)) > 150  # spread, not one instant


def test_backoff_doubles_up_to_its_cap() -> None:
    cfg = lc.RenewalConfig(retry_base=dt.timedelta(minutes=1), retry_max=dt.timedelta(minutes=10))
    assert [backoff(n, cfg).total_seconds() / 60 for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_location_rule_beats_profile_beats_global() -> None:
    cfg = lc.loads("""
renewal:
  renew_before: 10d
  profiles: {short: {renew_before: 1h}}
  locations:
    - {location: "tls://db.*", renew_before: 2d}
""")
    r = cfg.renewal
    assert renew_before_for(r, profile="short", locations=["tls://db.example:5432"]) == 2 * DAY
    assert renew_before_for(r, profile="short", locations=["file:///x"]) == dt.timedelta(hours=1)
    assert renew_before_for(r, profile="tls-server", locations=["file:///x"]) == 10 * DAY


def test_interval_and_cron_next_runs() -> None:
    every = lc.Schedule(name="a", job="scan", every=dt.timedelta(minutes=5))
    cron = lc.Schedule(name="b", job="scan", cron="30 3 * * *")
    assert next_run(every, T0) == T0 + dt.timedelta(minutes=5)
    assert next_run(cron, T0) == T0.replace(hour=3, minute=30)
    assert next_run(cron, T0.replace(hour=4)) == T0.replace(hour=3, minute=30) + DAY


def test_renew_and_notify_are_scheduled_when_the_config_says_nothing() -> None:
    names = [(s.name, s.every) for s in schedules(lc.LifecycleConfig())]
    assert names == [("renew", dt.timedelta(minutes=1)), ("notify", dt.timedelta(minutes=1))]


def test_a_full_config_reads_back() -> None:
    cfg = lc.loads("""
policy: policy.yaml
deploy:
  - location: "tls://127.0.0.1:8443"
    files: {fullchain: /etc/nginx/tls/web.pem, key: /etc/nginx/tls/web-key.pem}
    reload: "nginx -s reload"
    verify: ["tls://127.0.0.1:8443?sni=web.example"]
    reload_timeout: 30
    verify_timeout: 10
renewal: {jitter: 0.05, key_policy: reuse, retry: {base: 30s, max: 2h, attempts: 3}}
schedules:
  - {name: lan, job: scan, cron: "*/15 * * * *", targets: [10.0.0.0/24], ports: "443,8443"}
notifications:
  thresholds: [7, 30, 1]
  webhooks: ["https://chat.example/hooks/x"]
  email: {host: smtp.example, to: [pki@example.org], username: u, password_file: /run/pw}
  owners: {payments: ["pay@example.org"]}
""")
    [entry] = cfg.deploy
    assert entry.matches("tls://127.0.0.1:8443")
    assert not entry.matches("tls://127.0.0.1:8444")
    assert entry.verify == ("tls://127.0.0.1:8443?sni=web.example",)
    assert (entry.reload_timeout, entry.verify_timeout) == (30.0, 10.0)
    assert cfg.renewal.key_policy == "reuse"
    assert (cfg.renewal.retry_base, cfg.renewal.attempts) == (dt.timedelta(seconds=30), 3)
    [lan] = cfg.schedules
    assert (lan.name, lan.cron, lan.options["ports"]) == ("lan", "*/15 * * * *", "443,8443")
    assert cfg.notifications.thresholds == (30, 7, 1)
    assert cfg.notifications.email is not None
    assert cfg.notifications.email.port == 587
    assert cfg.notifications.owners == {"payments": ("pay@example.org",)}


@pytest.mark.parametrize(("text", "message"), [
    ("deploy: {location: x}\n", "config:1: deploy must be a list"),
    ("schedules:\n  - {job: scan, every: 1m, cron: '* * * * *'}\n",
     "config: schedules[0] (scan): give exactly one of 'every' or 'cron'"),
    ("renewal:\n  jitter: 0.7\n", "config:2: renewal.jitter: jitter is a fraction"),
    ("renewal:\n  key_policy: sometimes\n", "config:2: renewal.key_policy: key_policy must"),
    ("notifications:\n  email: {port: 25}\n", "config:2: notifications.email: 'host' is"),
    ("deploy:\n  - location: a\n    location: b\n", "config:3: 'location' given twice"),
    ("a: [\n", "config:2: not YAML"),
    ("schedules:\n  - {job: files, every: 1h}\n",
     "config: schedules[0] (files): 'paths' is required"),
    ("schedules:\n  - {job: files, every: 1h, paths: [/x], ports: '443'}\n",
     "config: schedules[0] (files): 'ports' is not an option of this job (its options: paths)"),
])
def test_bad_configs(text: str, message: str) -> None:
    with pytest.raises(lc.ConfigError) as err:
        lc.loads(text)
    assert str(err.value).startswith(message), str(err.value)


def test_durations() -> None:
    assert [lc.parse_duration(v).total_seconds() for v in (90, "90s", "5m", "2h", "1.5d")] == \
        [90, 90, 300, 7200, 129600]
    for bad in ("0s", "-1m", "5 weeks", True):
        with pytest.raises(ValueError, match="duration"):
            lc.parse_duration(bad)
