"""psu-core: the specification's float64 reference of the Parallel Spiking Unit family.

SPEC.md (shipped inside the package as ``psu_core/SPEC.md``) is the normative text. Submodules:
``checks`` (bad input), ``rng`` (Threefry stream), ``reference`` (float64 oracle),
``tolerances``, ``vectors`` (golden vectors), ``adapter`` (the conformance adapter).
"""

__version__ = "0.1.0"

#: Version of SPEC.md and of the golden-vector format.
FORMAT_VERSION = 1
