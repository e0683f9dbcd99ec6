"""Shared test set-up: hypothesis settings, the vectors folder, and 'no skips in CI'."""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# The suite must not depend on timing: no deadlines (the machine is shared and noisy).
settings.register_profile("pyvxlan", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.load_profile("pyvxlan")

IN_CI = os.environ.get("CI") == "true"
ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT.parent / "shared" / "vectors"


def vectors_dir() -> Path:
    """``../shared/vectors`` beside the checkout; skips (a failure under CI) when absent."""
    if not VECTORS.is_dir():
        pytest.skip(f"the shared vectors folder {VECTORS} is not on this machine")
    return VECTORS


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    # CI has root, namespaces, tshark and the vectors: a skip there hides a test that never ran.
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which counts as a failure: {reason}"
