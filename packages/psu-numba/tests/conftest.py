"""Shared fixtures for the psu-numba unit tests (behaviour specific to these kernels; what all
backends share is tested by the conformance suite)."""

from __future__ import annotations

import pytest

MODES = [("psu", "expected"), ("psu", "sampled"), ("ipsu", "expected"), ("rpsu", "expected"), ("rpsu", "sampled")]


@pytest.fixture(params=MODES, ids=[f"{v}-{r}" for v, r in MODES])
def mode(request):
    return request.param
