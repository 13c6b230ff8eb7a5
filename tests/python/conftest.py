# SPDX-License-Identifier: GPL-2.0-or-later
import os
import tempfile

import pytest


@pytest.fixture(autouse=True)
def job_ns(monkeypatch):
    """A private segment namespace, as the plugin gives a job."""
    with tempfile.TemporaryDirectory(dir="/dev/shm") as d:
        monkeypatch.setenv("JOBSHM_DIR", d)
        monkeypatch.setenv("JOBSHM_PREFIX", "jobshm.4242.")
        import jobshm
        jobshm._cache.clear()
        yield d
