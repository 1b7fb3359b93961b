"""CLI start: ``certwarden --help`` and ``certwarden inspect FILE`` beside ``python -c pass``.

Each command is a fresh process, as a user starts it, so the figure is interpreter start +
imports + the command itself. The runs of the three are interleaved (one of each per round)
so a busy machine slows all three alike; the goal (issue 16) is <= 0.2 s for both commands.
Answers are checked: ``--help`` must list every verb, ``inspect`` must print the sample's
subject and SHA-256 prefix; a wrong answer stops the bench.

Bytecode is cached as an installed package has it (pip compiles at install): the children run
with ``PYTHONPYCACHEPREFIX`` pointing at a temporary directory (so the source tree is not
touched) and without ``PYTHONDONTWRITEBYTECODE``; the warm-up run fills that cache.
``--no-bytecode-cache`` measures a start that compiles every certwarden module instead.

    .venv/bin/python bench/cli.py [ROUNDS] [--no-bytecode-cache]
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "src" / "certwarden" / "samples" / "self-signed.pem"
# What the sample is (src/certwarden/samples/README.txt): checked in inspect's output.
SAMPLE_SUBJECT = "CN=printer.sample.internal"
SAMPLE_SHA256_PREFIX = "c05c26ae3fc4"
VERBS = ("acme", "ca", "create", "demo", "discover", "forecast", "inspect", "inventory",
         "replace", "report", "scan", "serve", "traffic", "trust")
GOAL_SECONDS = 0.2


def certwarden() -> list[str]:
    """The console script beside this interpreter, else the same two lines it runs."""
    script = Path(sys.executable).parent / "certwarden"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from certwarden.cli import main; sys.exit(main())"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system of the child) and stdout of one run."""
    cpu0, t0 = _children_cpu(), time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env=env)
    elapsed, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    if out.returncode != 0:
        sys.exit(f"bench: {' '.join(argv)} exited {out.returncode}: {out.stderr.strip()[-300:]}")
    return elapsed, cpu, out.stdout


def check_help(stdout: str) -> None:
    missing = [v for v in VERBS if f"  {v} " not in stdout]
    if missing:
        sys.exit(f"bench: --help does not list {missing}")


def check_inspect(stdout: str) -> None:
    if SAMPLE_SUBJECT not in stdout or SAMPLE_SHA256_PREFIX not in stdout:
        sys.exit(f"bench: inspect did not describe the sample:\n{stdout}")


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    rounds = int(args[0]) if args else 15
    env = dict(os.environ)
    cache = tempfile.mkdtemp(prefix="certwarden-bench-pycache-")
    if "--no-bytecode-cache" not in sys.argv:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = cache
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    cases = {
        "python -c pass": ([sys.executable, "-c", "pass"], None),
        "certwarden --help": ([*certwarden(), "--help"], check_help),
        "certwarden inspect FILE": ([*certwarden(), "inspect", str(SAMPLE)], check_inspect),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    cpus: dict[str, list[float]] = {name: [] for name in cases}
    for argv, check in cases.values():  # one warm-up each: the page cache, .pyc files
        _, _, stdout = run(argv, env)
        if check:
            check(stdout)
    for _ in range(rounds):
        for name, (argv, _check) in cases.items():
            elapsed, cpu, _ = run(argv, env)
            times[name].append(elapsed)
            cpus[name].append(cpu)
    base = statistics.median(times["python -c pass"])
    base_cpu = statistics.median(cpus["python -c pass"])
    print(f"{rounds} runs each, interleaved; wall seconds min / median / max, ratio = median "
          f"/ median of python -c pass; then CPU seconds (user+sys) median and its ratio")
    for name, ts in times.items():
        med, cpu = statistics.median(ts), statistics.median(cpus[name])
        goal = "" if name == "python -c pass" else (
            f"  goal <= {GOAL_SECONDS} s: {'met' if med <= GOAL_SECONDS else 'NOT met'}")
        print(f"  {name:<25} {min(ts):.3f} / {med:.3f} / {max(ts):.3f} {med / base:5.1f}x"
              f"   cpu {cpu:.3f} {cpu / base_cpu:5.1f}x{goal}")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"bytecode {'not cached' if 'PYTHONDONTWRITEBYTECODE' in env else 'cached'}")
    shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
