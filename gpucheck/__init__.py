"""The GPU check: unit tests, the conformance suite on every CUDA pair and the CUDA benchmark in
one command (``python -m gpucheck``; ``--dry-run`` on a CPU). See :mod:`gpucheck.__main__`."""
