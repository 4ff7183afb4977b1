"""Ledger test fixtures and Hypothesis profiles.

TOLLGATE_HYPOTHESIS_PROFILE=ci (or `dev`, the default) scales the property tests and the ledger state
machine: `dev` keeps the whole directory to a few tens of seconds; `ci` runs the counts of RELIABILITY.md §6
(10k allocation examples, 200 state-machine runs x 50 steps, 16 x 500 bank transfers).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("TOLLGATE_HYPOTHESIS_PROFILE", "dev")
_SCALES = {
    "dev": {"money": 300, "machine_examples": 50, "machine_steps": 30, "bank_transfers": 100},
    "ci": {"money": 10_000, "machine_examples": 200, "machine_steps": 50, "bank_transfers": 500},
}
if PROFILE not in _SCALES:
    raise pytest.UsageError(f"TOLLGATE_HYPOTHESIS_PROFILE must be one of {sorted(_SCALES)}, not {PROFILE!r}")
SCALE = _SCALES[PROFILE]

# Pure arithmetic: cheap examples, many of them.
settings.register_profile("tollgate-money", max_examples=SCALE["money"], deadline=None, print_blob=True)
# The ledger state machine: every step posts to the database, so no deadline and no "too slow" health check.
settings.register_profile(
    "tollgate-ledger-machine",
    max_examples=SCALE["machine_examples"],
    stateful_step_count=SCALE["machine_steps"],
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture
def bank_transfers_per_thread() -> int:
    return SCALE["bank_transfers"]
