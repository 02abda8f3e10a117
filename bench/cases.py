"""Cases and the rounds that interleave them (A B C A B C ...).

A case runs a workload of ``n`` messages on a flushed Redis and returns a Sample per timed step
("put", "reserve", ...). Its ``n`` is calibrated once, by a small untimed run, so that its
fastest step lasts at least the requested seconds. A case with several steps also gets a
"lifecycle" row: all its steps together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .harness import RedisServer, Results, Sample, sized

Steps = dict[str, Sample]


@dataclass
class Case:
    key: str
    """Row keys are ``key/step``."""
    section: str
    system: str
    detail: str
    run: Callable[[RedisServer, int], Steps]
    multiple: int = 1
    """n is rounded up to this (the batch size)."""
    probe: int = 1000
    """Messages of the calibration run."""
    lifecycle: bool = True
    sized_by: tuple[str, ...] = ()
    """The steps whose rate sizes n (default: all). A step much faster than the others that is
    only there to set up the next (a bulk put before a one-by-one consumer) would otherwise
    make the others last minutes."""
    n: int = 0


def calibrate(server: RedisServer, case: Case, seconds: float) -> None:
    server.flush()
    probe = -(-case.probe // case.multiple) * case.multiple
    steps = case.run(server, probe)
    fastest = max(s.messages / s.seconds for step, s in steps.items()
                  if s.seconds > 0 and (not case.sized_by or step in case.sized_by))
    case.n = sized(fastest, seconds, case.multiple, probe)


def record(results: Results, case: Case, steps: Steps) -> None:
    for step, sample in steps.items():
        results.add(f"{case.key}/{step}", case.section, case.system, step, case.detail, sample.figures())
    if case.lifecycle and len(steps) > 1:
        total = Sample(case.n, sum(s.seconds for s in steps.values()), sum(s.cpu for s in steps.values()))
        results.add(f"{case.key}/lifecycle", case.section, case.system, "lifecycle", case.detail, total.figures())


def run_rounds(server: RedisServer, results: Results, cases: Sequence[Case], rounds: int, seconds: float,
               log: Callable[[str], None]) -> None:
    for case in cases:
        calibrate(server, case, seconds)
        log(f"  {case.key}: {case.n:,} messages per step")
    for round_no in range(rounds):
        for case in cases:
            server.flush()
            record(results, case, case.run(server, case.n))
        log(f"  round {round_no + 1}/{rounds} done")
