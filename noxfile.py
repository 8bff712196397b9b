"""Every session a user or CI runs.

    nox -s conformance                 every backend x device pair, e.g. conformance(torch-cpu)
    nox -s "conformance(torch-cpu)"    one pair;  nox -t cuda  every GPU pair
    nox -s "conformance(torch-cpu)" -- -k fuzz --psu-fuzz-seconds 3600 --psu-fuzz-examples 100000
                                       a long fuzz run (the default: 60 s per pair, reproducible)
    nox -s tests                       unit tests of every package + the suite on CPU devices
    nox -s lint                        ruff
    nox -s vectors                     regenerate the golden vectors and fail on any difference
    nox -s bench                       the benchmark harness (arguments after --)
    nox -s demo                        the training example on scikit-learn's digits
    nox -s distributed                 JAX sharding on virtual devices, torch DDP over gloo (in tests too)
    nox -s gpu_check                   on one NVIDIA GPU: unit tests, every CUDA pair, CUDA benchmark
                                       (-- --dry-run: the same on a CPU; python -m gpucheck without nox)

Installs come from the package registry as a new user's would. PyTorch is pinned to a CPU build
on these machines and JAX is the CPU one; GPU users override them with any requirement string pip
understands, e.g. ``PSU_TORCH_SPEC="torch==2.13.0" PSU_JAX_SPEC="jax[cuda12]" nox -t cuda``
(with their own package index configured for the CUDA build of torch).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.error_on_missing_interpreters = False

ROOT = Path(__file__).resolve().parent
CORE = "./packages/psu-core"
SUITE = "./conformance"
TORCH_SPEC = os.environ.get("PSU_TORCH_SPEC", "torch==2.13.0")
# A CPU jax by default; GPU users ask for theirs, e.g. PSU_JAX_SPEC="jax[cuda12]".
JAX_SPEC = os.environ.get("PSU_JAX_SPEC", "jax>=0.6.0")
REPORTS = ROOT / "reports"
# The benchmark's third-party peers, pinned to versions that install beside torch 2.13 (CPU) and jax.
BENCH_REQUIREMENTS = ("matplotlib>=3.8", "spikingjelly==2.0.0", "snntorch==1.0.0", "spyx==1.0.0")
# ONNX export of psu-torch modules, checked in onnxruntime (psu-torch's [onnx] extra).
ONNX_REQUIREMENTS = ("onnx", "onnxscript", "onnxruntime")
# The training example (digits from scikit-learn, shipped with it: no download).
DEMO_REQUIREMENTS = ("scikit-learn", "matplotlib>=3.8", "tqdm", "flax>=0.10.7", "optax", "h5py")


@dataclass(frozen=True)
class Pair:
    """One backend on one device, as the conformance suite names them."""

    backend: str  # entry-point name in the group psu.backends
    device: str  # "cpu" or "cuda"
    packages: tuple[str, ...]  # local packages to install (beside psu-core and the suite)
    requirements: tuple[str, ...] = ()  # from the package registry
    env: dict[str, str] = field(default_factory=dict)
    label: str = ""  # session id when it is not backend-device
    args: tuple[str, ...] = ()  # extra pytest arguments (a subset for slow simulators)

    @property
    def id(self) -> str:
        return self.label or f"{self.backend}-{self.device}"

    @property
    def tag(self) -> str:
        """The backend's nox tag: its name, or for a port behind the exec protocol its label's stem
        (``js`` for ``js-cpu``)."""
        return self.label.rsplit("-", 1)[0] if self.backend.startswith("exec:") else self.backend

    @property
    def on_cpu(self) -> bool:
        """Runs on a machine without a GPU (the CPU itself, or a simulator of the GPU)."""
        return self.device == "cpu" or bool(self.env)


# Backends whose package exists; each backend issue adds its rows.
PAIRS: list[Pair] = [
    Pair("reference", "cpu", ()),
    Pair("torch", "cpu", ("./packages/psu-torch",), (TORCH_SPEC,)),
    Pair("torch", "cuda", ("./packages/psu-torch",), (TORCH_SPEC,)),
    Pair("jax", "cpu", ("./packages/psu-jax",), (JAX_SPEC, "flax>=0.10.7")),
    Pair("jax", "cuda", ("./packages/psu-jax",), (JAX_SPEC, "flax>=0.10.7")),
    Pair("numba-cpu", "cpu", ("./packages/psu-numba",), label="numba-cpu"),
    # Numba's CUDA simulator runs the CUDA kernels on the CPU, a thousand times slower: golden cases
    # up to T = 16 (every variant, mode, preset and rank), not the T = 64 to 4096 ones or the large
    # generated cases (over an hour there: one IPSU gradient at T = 512 ran over 10 minutes), and
    # not the fuzz group (a case of T up to 4096 takes minutes there: the group ran over 6 minutes
    # unfinished). On a GPU the numba-cuda pair below runs them all. The simulator computes the
    # kernels' arithmetic as NumPy scalars, which warn on inf - inf where a GPU gives NaN silently:
    # the causality group's infinite inputs would turn that warning into an error (the repository's
    # pytest settings make RuntimeWarning an error), so this pair ignores RuntimeWarning.
    Pair(
        "numba-cuda",
        "cuda",
        ("./packages/psu-numba[cuda]",),  # the real numba-cuda, as users install it
        env={"NUMBA_ENABLE_CUDASIM": "1"},
        label="numba-cuda-sim",
        args=(
            "-k",
            "not -T64- and not -T128- and not -T256- and not -T512- and not -T1024- and not -T4096- and not gen- "
            "and not other_seed_other_uniforms and not test_fuzz",
            "-W",
            "ignore::RuntimeWarning",
        ),
    ),
    Pair("numba-cuda", "cuda", ("./packages/psu-numba[cuda]",), label="numba-cuda"),
    Pair("cupy", "cuda", ("./packages/psu-numba[cupy]",)),
    # A port in another language, driven over the exec protocol (conformance/PORTING.md): Node, no packages.
    Pair("exec:node ports/js/adapter.mjs", "cpu", (), label="js-cpu"),
]


def install(session: nox.Session, pairs: list[Pair], *extra: str) -> None:
    """One pip command, so that the torch pin holds against what other packages would pull in
    (torchvision, asked for by SpikingJelly, would otherwise upgrade torch to a CUDA build)."""
    packages = sorted({p for pair in pairs for p in pair.packages})
    requirements = sorted({r for pair in pairs for r in pair.requirements} | set(extra))
    session.install(*requirements, CORE, SUITE, *packages)


def run_suite(session: nox.Session, pair: Pair, *args: str) -> None:
    REPORTS.mkdir(exist_ok=True)
    session.run(
        "python", "-m", "pytest", "--pyargs", "psu_conformance",
        "--psu-backend", pair.backend, "--psu-device", pair.device,
        "--psu-report", str(REPORTS / f"conformance-{pair.id}.json"),
        "-p", "no:cacheprovider", *pair.args, *args,
        env=pair.env,
    )  # fmt: skip


@nox.session(tags=["conformance"])
@nox.parametrize("pair", [nox.param(p, id=p.id, tags=[p.tag, "cudasim" if p.env else p.device]) for p in PAIRS])
def conformance(session: nox.Session, pair: Pair) -> None:
    """Certify one backend on one device against the golden vectors (arguments go to pytest)."""
    install(session, [pair])
    run_suite(session, pair, *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Unit tests of every package, then the conformance suite on every CPU pair."""
    cpu_pairs = [p for p in PAIRS if p.on_cpu]
    # torch and the peers: the benchmark harness and its peers are tested too. Triton, so that its
    # interpreter and the ahead-of-time compile for sm_90 check psu-torch's kernels on the CPU.
    install(
        session, cpu_pairs, "pytest>=8", TORCH_SPEC, "triton>=3.0", *ONNX_REQUIREMENTS, *BENCH_REQUIREMENTS,
        *DEMO_REQUIREMENTS,
    )  # fmt: skip
    packages = sorted({CORE, *(p.split("[")[0] for pair in cpu_pairs for p in pair.packages)})
    unit = [f"{p}/tests" for p in packages]
    unit += ["conformance/tests", "benchmarks/tests", "examples/tests", "gpucheck/tests", "tests"]
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", *unit, *session.posargs)
    # Its own process: JAX must start with 4 virtual CPU devices (its conftest sets XLA_FLAGS).
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", *DISTRIBUTED_JAX)
    for pair in cpu_pairs:
        run_suite(session, pair)


#: Sharded JAX on 2 and 4 virtual CPU devices (outputs, gradients and draws equal the single-device
#: call; no all-gather of the input), and DistributedDataParallel with 2 processes over gloo.
DISTRIBUTED_JAX = ("packages/psu-jax/tests_distributed",)
DISTRIBUTED_TORCH = ("examples/tests/test_example_ddp_train.py",)


@nox.session
def distributed(session: nox.Session) -> None:
    """Scale-out on the CPU: JAX sharding (jit with NamedSharding, shard_map, vmap) on virtual
    devices and torch DDP with 2 gloo processes; also part of `nox -s tests`."""
    install(session, [p for p in PAIRS if p.backend in ("torch", "jax") and p.device == "cpu"], "pytest>=8")
    # Arguments go to both runs; a selection (-k) that leaves one of them empty (exit 5) is fine.
    for tests in (DISTRIBUTED_JAX, DISTRIBUTED_TORCH):
        session.run("python", "-m", "pytest", "-p", "no:cacheprovider", *tests, *session.posargs, success_codes=[0, 5])


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole tree."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")


@nox.session
def vectors(session: nox.Session) -> None:
    """Regenerate the golden vectors and fail on any byte of difference; verify them."""
    session.install(CORE)
    data = str(ROOT / "packages/psu-core/src/psu_core/vectors/data")
    session.run("python", "-m", "psu_core.vectors", "generate", "--out", data, "--check")
    session.run("python", "-m", "psu_core.vectors", "verify", "--dir", data)


@nox.session
def demo(session: nox.Session) -> None:
    """Train the digits SNN once per neuron (PSU, IPSU, RPSU, LIF) with psu-torch and psu-jax."""
    session.install(TORCH_SPEC, *DEMO_REQUIREMENTS, CORE, "./packages/psu-torch", "./packages/psu-jax")
    session.run("python", "examples/train_digits.py", *session.posargs)


@nox.session
def gpu_check(session: nox.Session) -> None:
    """The GPU check of one NVIDIA GPU in one command (gpucheck/): GPU unit tests, the suite on every
    CUDA pair with PSU_REQUIRE_DEVICE=1, the CUDA benchmark; one summary as JSON and Markdown in
    reports/gpu-check. Without nox (frameworks already installed, no registry): python -m gpucheck."""
    # The GPU builds: JAX's CUDA plugin and CuPy for the toolkit at hand (CUDA 13 unless overridden).
    jax_gpu = os.environ.get("PSU_JAX_SPEC", "jax[cuda13]")
    cupy = os.environ.get("PSU_CUPY_SPEC", "cupy-cuda13x")
    session.install(
        TORCH_SPEC, "triton>=3.0", jax_gpu, "flax>=0.10.7", cupy, "pytest>=8", CORE, SUITE,
        "./packages/psu-torch", "./packages/psu-jax", "./packages/psu-numba[cuda]",
    )  # fmt: skip
    session.run("python", "-m", "gpucheck", "--out", str(REPORTS / "gpu-check"), *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Every registered backend against the dense formulation, a LIF loop, SpikingJelly, snnTorch,
    spyx and the copy floor; writes benchmarks/RESULTS.md and the PNG plots (args after --)."""
    install(session, PAIRS, TORCH_SPEC, *BENCH_REQUIREMENTS)
    session.run("python", "-m", "benchmarks", *session.posargs)
