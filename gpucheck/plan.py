"""What the GPU check runs: one :class:`Step` per command, for a GPU or for the CPU dry run.

On a GPU: the unit tests of the three GPU packages, the conformance suite on every CUDA pair
with ``PSU_REQUIRE_DEVICE=1`` (a missing device fails instead of skipping), and the benchmark on
CUDA at ``T*N = 2^24`` for ``T`` in {8, 64, 256, 1024} with peak memory.

The dry run exercises the same steps on a CPU with what stands in for the GPU there: the Triton
interpreter and ahead-of-time compilation (psu-torch), Numba's CUDA simulator (the
``numba-cuda`` pair, float32 golden cases of ``T`` = 1, 2, 4), the CuPy kernels' nvcc check, and the CPU
pairs of torch and JAX in place of their CUDA pairs. Nothing in it ran on a GPU, and the summary
says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: The conformance pairs of a GPU run: every backend with a CUDA device.
CUDA_BACKENDS = ("torch", "jax", "numba-cuda", "cupy")
#: The benchmark of a GPU run (issue: T*N = 2^24, T in {8, 64, 256, 1024}, float32).
GPU_BENCH_T = (8, 64, 256, 1024)
GPU_BENCH_TOTAL = "2^24"
GPU_PACKAGES_TESTS = ("packages/psu-torch/tests", "packages/psu-jax/tests", "packages/psu-numba/tests")
#: The environment of every step: unbuffered output, JAX not grabbing 75% of the GPU up front
#: (the four suites share one device).
BASE_ENV = {"PYTHONUNBUFFERED": "1", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}


@dataclass(frozen=True)
class Step:
    """One command of the check; ``kind`` says how its outputs are read (unit, conformance, bench)."""

    name: str
    kind: str  # "unit" | "conformance" | "bench"
    args: tuple[str, ...]  # after the interpreter: ``python <args>``
    timeout_s: int
    env: dict[str, str] = field(default_factory=dict)
    report: str = ""  # file under the output folder the step writes (JSON or JUnit XML)
    backend: str = ""  # conformance: the pair
    device: str = ""
    parallel: bool = True  # may run beside the other parallel steps (benchmarks never do)


def _pytest(*args: str) -> tuple[str, ...]:
    return ("-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfEs", *args)


def _conformance(backend: str, device: str, timeout_s: int, env: dict[str, str], *extra: str) -> Step:
    report = f"conformance-{backend}-{device}.json"
    return Step(
        name=f"conformance {backend}-{device}",
        kind="conformance",
        args=_pytest("--pyargs", "psu_conformance", "--psu-backend", backend, "--psu-device", device,
                     "--psu-report", "{out}/" + report, *extra),
        timeout_s=timeout_s,
        env=env,
        report=report,
        backend=backend,
        device=device,
    )  # fmt: skip


def gpu_plan(*, unit_timeout_s: int = 300, conformance_timeout_s: int = 300, bench_timeout_s: int = 200) -> list[Step]:
    """The check on a machine with one NVIDIA GPU (default timeouts sum to under 9 minutes, since
    unit tests and the suites run side by side and the benchmark after them)."""
    require = {"PSU_REQUIRE_DEVICE": "1"}
    steps = [
        Step("unit tests", "unit", _pytest(*GPU_PACKAGES_TESTS, "--junitxml", "{out}/unit.xml"),
             unit_timeout_s, env=require, report="unit.xml"),
    ]  # fmt: skip
    # The fuzz group is time-bounded (60 s by default); 20 s here keeps the suites, which run side
    # by side, inside their timeouts.
    fuzz = ("--psu-fuzz-seconds", "20")
    steps += [_conformance(b, "cuda", conformance_timeout_s, require, *fuzz) for b in CUDA_BACKENDS]
    steps.append(
        Step(
            "benchmark cuda",
            "bench",
            ("-m", "benchmarks", "--device", "cuda", "--backends", ",".join(CUDA_BACKENDS),
             "--peers", "dense-torch,lif-loop-torch,copy-floor", "--T", *map(str, GPU_BENCH_T),
             "--total", GPU_BENCH_TOTAL, "--repeats", "5", "--max-call-seconds", "1", "--no-plots",
             "--results-md", "{out}/RESULTS-cuda.md", "--json", "{out}/bench-cuda.json"),
            bench_timeout_s,
            report="bench-cuda.json",
            parallel=False,
        )
    )  # fmt: skip
    return steps


def dry_plan() -> list[Step]:
    """The same steps on a CPU, small: what CI runs to keep the GPU check working."""
    # Golden cases of T = 1..4 only: the orchestration is what is checked here, not the kernels
    # (the full suites run in their own sessions).
    small = ("--psu-dtype", "float32", "-k", "-T1- or -T2- or -T4- or rng or bad_input")
    sim = {"NUMBA_ENABLE_CUDASIM": "1", "PSU_REQUIRE_DEVICE": "1"}  # the simulator is the device
    unit = (
        "packages/psu-torch/tests/test_torch_triton.py",
        "packages/psu-numba/tests/test_cuda.py",
        "packages/psu-numba/tests/test_cupy.py",
    )
    return [
        Step("unit tests (Triton interpreter and AOT, Numba CUDA simulator and PTX, nvcc)", "unit",
             _pytest(*unit, "--junitxml", "{out}/unit.xml"), 600, report="unit.xml"),
        _conformance("torch", "cpu", 600, {}, *small),
        _conformance("jax", "cpu", 600, {}, *small),
        _conformance("numba-cuda", "cuda", 600, sim, *small),
        Step(
            "benchmark cpu",
            "bench",
            ("-m", "benchmarks", "--device", "cpu", "--backends", "torch,jax,numba-cpu",
             "--peers", "dense-torch,copy-floor", "--T", "8", "64", "--total", "2^12", "--repeats", "1",
             "--warmup", "2", "--target-repeat-seconds", "0.001", "--no-plots",
             "--results-md", "{out}/RESULTS-dry-run.md", "--json", "{out}/bench-cpu.json"),
            600,
            report="bench-cpu.json",
            parallel=False,
        ),
    ]  # fmt: skip


def resolve(step: Step, out: Path) -> tuple[str, ...]:
    """The step's arguments with ``{out}`` replaced by the output folder."""
    return tuple(a.replace("{out}", str(out)) for a in step.args)
