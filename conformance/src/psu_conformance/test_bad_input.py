"""Group bad_input: every wrong input of SPEC §8 (the table ``bad_input.json`` beside the golden
vectors, which ports in other languages run too) raises the specified exception type (TypeError for
a non-floating ``x``, ValueError otherwise) from ``forward`` and from ``vjp``, and the message names
the argument (as a whole word: ``reset`` does not match inside ``reset_scale``).

The contract for unvalidated data: scanning ``x`` for NaN/inf costs a pass over the data, so it
happens only with ``validate=True``. With ``validate=False`` (the default) a NaN in ``x`` must NOT
raise; what the outputs then hold is unspecified.
"""

from __future__ import annotations

import numpy as np
import pytest

from psu_conformance.cases import ACCEPTED_INPUTS, BAD_INPUTS, names_argument


def _expect_rejection(call, bad, what):  # type: ignore[no-untyped-def]
    try:
        call()
    except Exception as exc:  # noqa: BLE001 - the type is what is being checked
        got = exc
    else:
        pytest.fail(
            f"{what} accepted bad input {bad.id}: expected {bad.exception.__name__} naming {bad.argument!r}",
            pytrace=False,
        )
    if not isinstance(got, bad.exception):
        pytest.fail(
            f"{what}, bad input {bad.id}: raised {type(got).__name__}({got}), expected {bad.exception.__name__}",
            pytrace=False,
        )
    if not names_argument(str(got), bad.argument):
        pytest.fail(
            f"{what}, bad input {bad.id}: {type(got).__name__} message {str(got)!r} does not name {bad.argument!r}",
            pytrace=False,
        )


def _grad_for(case):  # type: ignore[no-untyped-def]
    return np.ones(np.shape(case["x"]), dtype=np.float64)


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=[b.id for b in BAD_INPUTS])
def test_forward_rejects(psu_target, psu_adapter, bad):  # type: ignore[no-untyped-def]
    case = bad.case()
    _expect_rejection(
        lambda: psu_adapter.forward(case, device=psu_target.device, dtype=psu_target.dtype), bad, "forward"
    )


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=[b.id for b in BAD_INPUTS])
def test_vjp_rejects(psu_target, psu_adapter, bad):  # type: ignore[no-untyped-def]
    case = bad.case()
    grad = _grad_for(case)
    _expect_rejection(lambda: psu_adapter.vjp(case, grad, device=psu_target.device, dtype=psu_target.dtype), bad, "vjp")


@pytest.mark.parametrize("accepted", ACCEPTED_INPUTS, ids=[a.id for a in ACCEPTED_INPUTS])
def test_valid_input_accepted(psu_target, psu_adapter, accepted):  # type: ignore[no-untyped-def]
    """The base of every bad input is itself valid (with validate=True too): the rejections above
    are about the one changed argument. NaN in ``x`` without ``validate`` is accepted too."""
    case = accepted.case()
    psu_adapter.forward(case, device=psu_target.device, dtype=psu_target.dtype)
    psu_adapter.vjp(case, _grad_for(case), device=psu_target.device, dtype=psu_target.dtype)
