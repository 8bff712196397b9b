"""The example scripts are plain modules side by side in examples/; make them importable."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1]
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))


@pytest.fixture(scope="session")
def digits_data():
    """The digits split every test trains on (loaded once)."""
    import digits

    return digits.load()
