"""psu-conformance: the shared conformance suite of the PSU family, as a pytest plugin.

Run it on a backend with::

    python -m pytest --pyargs psu_conformance --psu-backend NAME --psu-device DEVICE

or on a port in any language that speaks the line protocol (``protocol.schema.json``)::

    python -m pytest --pyargs psu_conformance --psu-backend exec:"node ports/js/adapter.mjs"

``psu_conformance.adapter`` defines the adapter protocol a backend implements,
``psu_conformance.exec_adapter`` the adapter that drives a program over the line protocol,
``psu_conformance.plugin`` the pytest plugin (options, parametrization, the end-of-run matrix),
``psu_conformance.compare`` the comparisons, ``psu_conformance.cases`` the inputs, and the
``test_<group>.py`` modules the groups: api, rng, forward, gradients, sampled, online, bad_input,
determinism, causality, fuzz (``psu_conformance.causality`` and ``psu_conformance.fuzz`` hold their
rules; ``python -m psu_conformance.fuzz`` reruns one fuzz case). See PORTING.md.
"""

__version__ = "0.1.0"
