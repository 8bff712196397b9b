"""Group forward: every golden case (expected and sampled reset) through ``adapter.forward``.

Spikes must match exactly in float32/float64 (half precision: the dtype's allowed mismatch
fraction, but none at a membrane pin, which sits exactly on the threshold), the membrane within
the dtype's membrane tolerance (SPEC §9, §10).
"""

from __future__ import annotations

import numpy as np

from psu_conformance.cases import adapter_case


def test_forward(psu_target, psu_vector_case, psu_adapter, psu_check):  # type: ignore[no-untyped-def]
    vc = psu_vector_case
    out = psu_adapter.forward(adapter_case(vc), device=psu_target.device, dtype=psu_target.dtype)
    psu_check.keys("forward", out, ["spikes", "membrane"])
    with psu_check.collect():
        psu_check.membrane("forward membrane", out["membrane"], vc.expected["membrane"])
        psu_check.exact(
            "forward spikes",
            out["spikes"],
            vc.expected["spikes"],
            context={
                "actual membrane": out["membrane"] if np.shape(out["membrane"]) == vc.x.shape else None,
                "expected membrane": vc.expected["membrane"],
                "threshold": np.full(vc.x.shape, vc.threshold),
            },
            pinned=vc.pin_mask("membrane"),
        )
