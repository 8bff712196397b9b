"""Benchmark harness behind ``nox -s bench``: ``python -m benchmarks --help``.

Times every registered backend (entry-point group ``psu.backends``) against the paper's dense
formulation (``dense-torch``), a sequential LIF loop (``lif-loop-torch``), the SNN libraries
(SpikingJelly, snnTorch, spyx: :mod:`benchmarks.libpeers`) and the memory-bandwidth floor
(``copy-floor``), alternating in one process; writes RESULTS.md and PNG plots
(:mod:`benchmarks.markdown`, :mod:`benchmarks.figures`). Modules: :mod:`benchmarks.peers`,
:mod:`benchmarks.timing`, :mod:`benchmarks.memory`, :mod:`benchmarks.backends`,
:mod:`benchmarks.runner`, :mod:`benchmarks.report`.
"""
