"""Benchmark harness behind ``nox -s bench``: ``python -m benchmarks --help``.

Times every registered backend (entry-point group ``psu.backends``) against the paper's dense
formulation (``dense-torch``), a sequential LIF loop (``lif-loop-torch``) and the memory-bandwidth
floor (``copy-floor``), alternating in one process. Modules: :mod:`benchmarks.peers`,
:mod:`benchmarks.timing`, :mod:`benchmarks.memory`, :mod:`benchmarks.backends`,
:mod:`benchmarks.runner`, :mod:`benchmarks.report`.
"""
