"""Group gradients: ``adapter.vjp`` with each golden case's ``grad_spikes`` against its gradients.

``dL/dx``, ``dL/dweight``, ``dL/dbias`` (IPSU/RPSU) within the gradient tolerance; ``dL/dthreshold``
and ``dL/dsurrogate_alpha`` within the scalar-gradient tolerance (SPEC §5, §9). In half precision
``dL/dx`` is compared where the forward spikes agree with the vectors.
"""

from __future__ import annotations

import numpy as np

from psu_conformance.cases import adapter_case


def test_vjp(psu_target, psu_vector_case, psu_adapter, psu_check):  # type: ignore[no-untyped-def]
    vc = psu_vector_case
    dev, dt = psu_target.device, psu_target.dtype
    g = psu_adapter.vjp(adapter_case(vc), vc.grad_spikes.copy(), device=dev, dtype=dt)
    learned = vc.variant != "psu"
    psu_check.keys("vjp", g, ["x", "threshold", "surrogate_alpha"] + (["weight", "bias"] if learned else []))
    mask = None
    if psu_check.tolerances.spike_mismatch > 0:
        spikes = psu_adapter.forward(adapter_case(vc), device=dev, dtype=dt)["spikes"]
        mask = np.asarray(spikes, dtype=np.float64) == vc.expected["spikes"]
    with psu_check.collect():
        psu_check.gradient("vjp dL/dx", g["x"], vc.gradients["x"], mask=mask)
        if learned:
            psu_check.gradient("vjp dL/dweight", g["weight"], vc.gradients["weight"])
            psu_check.gradient("vjp dL/dbias", g["bias"], vc.gradients["bias"])
        psu_check.scalar_gradient("vjp dL/dthreshold", g["threshold"], vc.gradients["threshold"])
        psu_check.scalar_gradient("vjp dL/dsurrogate_alpha", g["surrogate_alpha"], vc.gradients["surrogate_alpha"])
