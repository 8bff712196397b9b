"""Group online: ``adapter.online`` (step by step through the backend's public stateful API, no
look-ahead) on every golden case must equal the vectors: spikes (and, in sampled mode, reset
draws) exactly (half precision: the dtype's allowed fraction, none at a pin), the membrane within
the dtype's tolerance (SPEC §3, §9)."""

from __future__ import annotations

import numpy as np

from psu_conformance.cases import adapter_case


def test_online(psu_target, psu_vector_case, psu_adapter, psu_check):  # type: ignore[no-untyped-def]
    vc = psu_vector_case
    out = psu_adapter.online(adapter_case(vc), device=psu_target.device, dtype=psu_target.dtype)
    sampled = vc.reset == "sampled"
    psu_check.keys("online", out, ["spikes", "membrane"] + (["reset"] if sampled else []))
    with psu_check.collect():
        psu_check.membrane("online membrane", out["membrane"], vc.expected["membrane"])
        psu_check.exact(
            "online spikes",
            out["spikes"],
            vc.expected["spikes"],
            context={"expected membrane": vc.expected["membrane"], "threshold": np.full(vc.x.shape, vc.threshold)},
            pinned=vc.pin_mask("membrane"),
        )
        if sampled:
            psu_check.exact(
                "online reset draws",
                out["reset"],
                vc.expected["reset"],
                context={"uniform": vc.expected["uniform"], "reset probability": vc.expected["reset_probability"]},
                pinned=vc.pin_mask("draw"),
            )
