"""The pytest plugin behind ``pytest --pyargs psu_conformance --psu-backend NAME --psu-device DEVICE``.

Registered through the ``pytest11`` entry point, so it loads in every pytest run of an environment
where psu-conformance is installed. Without ``--psu-backend`` it adds its options and does nothing
else; the suite's own modules, if something collects them, are reported as skipped ("no
--psu-backend given") without being imported.

With a backend it:

* loads the adapter (entry point in ``psu.backends``, ``module:callable``, or ``exec:COMMAND`` for
  a program in any language speaking the line protocol; an unknown name is a usage error listing
  the registered ones);
* parametrizes the suite's tests over the adapter's dtypes for the device (or ``--psu-dtype``),
  with ids ``<backend>-<device>-<dtype>-<case id>``;
* skips every test, naming the device, when the adapter does not offer the device on this
  machine, or fails them when ``PSU_REQUIRE_DEVICE=1``;
* collects pass/fail/skip counts and worst error ratios per group, prints the matrix at the end
  and writes it as JSON to ``--psu-report`` (default ``psu-conformance-<backend>-<device>.json``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from psu_conformance.adapter import Adapter, BackendError, load_adapter, registered_backends
from psu_conformance.report import (
    GROUP_PROPERTY,
    GROUPS,
    RATIO_PROPERTY,
    Matrix,
    default_report_path,
    group_of,
    write_report,
)
from psu_core.tolerances import TOLERANCES

PACKAGE_DIR = Path(__file__).resolve().parent
NO_BACKEND_REASON = (
    "no --psu-backend given (run: pytest --pyargs psu_conformance --psu-backend NAME --psu-device DEVICE)"
)
REQUIRE_DEVICE_ENV = "PSU_REQUIRE_DEVICE"


@dataclass(frozen=True)
class Target:
    """What one test runs on. ``dtype`` is None for the dtype-free rng group."""

    backend: str
    device: str
    dtype: str | None

    @property
    def id(self) -> str:
        parts = [self.backend, self.device] + ([self.dtype] if self.dtype else [])
        return "-".join(parts)


@dataclass
class SuiteState:
    """Per-session state, kept in ``config.stash``."""

    backend: str
    adapter: Adapter
    device: str
    dtypes: list[str]
    unavailable: str | None  # skip reason when the device cannot be used, else None
    matrix: Matrix
    report_path: Path
    backend_source: str


STATE_KEY = pytest.StashKey[SuiteState]()


def get_state(config: pytest.Config) -> SuiteState | None:
    return config.stash.get(STATE_KEY, None)


def is_suite_path(path: Path) -> bool:
    """A test module of this package (``psu_conformance/test_<group>.py``)."""
    return path.name.startswith("test_") and path.suffix == ".py" and path.resolve().parent == PACKAGE_DIR


# ----------------------------------------------------------------------------- options, setup


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("psu", "PSU conformance suite (psu_conformance)")
    group.addoption(
        "--psu-backend",
        metavar="NAME",
        default=None,
        help="backend to certify: an entry-point name in group 'psu.backends' (e.g. 'reference') "
        "or 'module:callable' returning an adapter. Without it the suite does nothing.",
    )
    group.addoption(
        "--psu-device", metavar="DEVICE", default="cpu", help="device to run on, e.g. cpu or cuda (default cpu)"
    )
    group.addoption(
        "--psu-dtype",
        metavar="DTYPE",
        default=None,
        help="run only this dtype (default: every dtype the adapter offers on the device)",
    )
    group.addoption(
        "--psu-report",
        metavar="PATH",
        default=None,
        help="where to write the JSON matrix (default psu-conformance-<backend>-<device>.json)",
    )
    group.addoption(
        "--psu-fuzz-seconds",
        metavar="N",
        type=float,
        default=60.0,
        help="time budget of the fuzz group on this backend, shared by its tests (default 60; no new case "
        "starts after it)",
    )
    group.addoption(
        "--psu-fuzz-examples",
        metavar="N",
        type=int,
        default=400,
        help="most cases per fuzz test (default 400); raise both for a long run",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "psu_cases(variant=None, reset=None): restrict the golden cases a conformance test runs on",
    )
    name = config.getoption("psu_backend", None)
    if not name:
        return
    try:
        backend, adapter = load_adapter(name)
    except BackendError as exc:
        raise pytest.UsageError(str(exc)) from exc
    source = name if ":" in name else registered_backends().get(name, name)
    device = config.getoption("psu_device")

    unavailable = None
    try:
        offered = list(adapter.devices())
    except Exception as exc:  # a broken driver is the device being unavailable, with the reason said
        offered = []
        unavailable = f"device {device} not available to backend {backend} on this machine ({exc!r})"
    if unavailable is None and device not in offered:
        unavailable = (
            f"device {device} not available to backend {backend} on this machine "
            f"(it offers: {', '.join(offered) or 'none'})"
        )

    wanted = config.getoption("psu_dtype", None)
    try:
        dtypes = list(adapter.dtypes(device))
    except Exception as exc:
        if unavailable is None:
            raise pytest.UsageError(f"backend {backend}: dtypes({device!r}) failed: {exc!r}") from exc
        dtypes = []
    if wanted:
        if wanted not in TOLERANCES:
            raise pytest.UsageError(f"--psu-dtype {wanted}: the specification knows {', '.join(TOLERANCES)}")
        if dtypes and wanted not in dtypes:
            raise pytest.UsageError(f"--psu-dtype {wanted}: backend {backend} offers {', '.join(dtypes)} on {device}")
        dtypes = [wanted]
    if not dtypes:
        if unavailable is None:
            raise pytest.UsageError(f"backend {backend} offers no dtype on device {device}")
        # The device is absent and the adapter cannot say which dtypes it would have: one
        # placeholder id, and every test skips (or fails) on the device before using a dtype.
        dtypes = ["dtype-unknown"]

    report = config.getoption("psu_report", None)
    root = Path(config.invocation_params.dir)
    report_path = root / (Path(report) if report else default_report_path(backend, device))
    state = SuiteState(
        backend=backend,
        adapter=adapter,
        device=device,
        dtypes=dtypes,
        unavailable=unavailable,
        matrix=Matrix(backend, device, dtypes),
        report_path=report_path,
        backend_source=source,
    )
    config.stash[STATE_KEY] = state
    config.pluginmanager.register(MatrixReporter(state), "psu_conformance_matrix")


def pytest_unconfigure(config: pytest.Config) -> None:
    """End what the adapter started (the program behind an ``exec:`` backend)."""
    state = get_state(config)
    close = getattr(state.adapter, "close", None) if state is not None else None
    if callable(close):
        close()


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = get_state(config)
    if state is None:
        return None
    status = "available" if state.unavailable is None else "NOT available"
    return [
        f"psu conformance: backend {state.backend} ({state.backend_source}), device {state.device} "
        f"({status}), dtypes {', '.join(state.dtypes)}"
    ]


# ----------------------------------------------------------------------------- collection


class _NoBackendModule(pytest.Module):
    """A suite module collected without ``--psu-backend``: skipped whole, never imported."""

    def collect(self) -> Any:
        pytest.skip(NO_BACKEND_REASON)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if get_state(parent.config) is None and is_suite_path(module_path):
        return _NoBackendModule.from_parent(parent, path=module_path)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize the suite: ``psu_target`` (dtype-bearing), ``psu_rng_target`` (no dtype), and
    ``psu_vector_case`` (golden cases, filtered by a ``psu_cases`` marker). Runs before the
    ``parametrize`` markers, so ids read ``<backend>-<device>-<dtype>-<case>``."""
    state = get_state(metafunc.config)
    module_file = getattr(metafunc.module, "__file__", None)
    if state is None or module_file is None or not is_suite_path(Path(module_file)):
        return
    names = metafunc.fixturenames
    if "psu_target" in names:
        targets = [Target(state.backend, state.device, d) for d in state.dtypes]
        metafunc.parametrize("psu_target", targets, ids=[t.id for t in targets], indirect=True)
    if "psu_rng_target" in names:
        target = Target(state.backend, state.device, None)
        metafunc.parametrize("psu_rng_target", [target], ids=[target.id], indirect=True)
    if "psu_vector_case" in names:
        from psu_conformance.cases import vector_cases

        marker = metafunc.definition.get_closest_marker("psu_cases")
        wanted = dict(marker.kwargs) if marker else {}
        selected = [c for c in vector_cases() if all(getattr(c, k) == v for k, v in wanted.items())]
        metafunc.parametrize("psu_vector_case", selected, ids=[c.id for c in selected])


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def psu_state(pytestconfig: pytest.Config) -> SuiteState:
    state = get_state(pytestconfig)
    if state is None:
        pytest.skip(NO_BACKEND_REASON)
    return state


@pytest.fixture(scope="session")
def psu_adapter(psu_state: SuiteState) -> Adapter:
    """The adapter under test."""
    return psu_state.adapter


def _gate(state: SuiteState) -> None:
    if state.unavailable is not None:
        if os.environ.get(REQUIRE_DEVICE_ENV) == "1":
            pytest.fail(f"{state.unavailable}; {REQUIRE_DEVICE_ENV}=1 makes this a failure", pytrace=False)
        pytest.skip(state.unavailable)


@pytest.fixture
def psu_target(request: pytest.FixtureRequest, psu_state: SuiteState) -> Target:
    """(backend, device, dtype) of this test; skips (or fails) when the device is unavailable."""
    _gate(psu_state)
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def psu_rng_target(request: pytest.FixtureRequest, psu_state: SuiteState) -> Target:
    """(backend, device) for the dtype-free rng group; same device gate as ``psu_target``."""
    _gate(psu_state)
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def psu_record(request: pytest.FixtureRequest) -> Callable[[str, float], None]:
    """``record(quantity, ratio)``: store an error ratio (1.0 = limit) for the end-of-run matrix."""

    def record(quantity: str, ratio: float) -> None:
        request.node.user_properties.append((RATIO_PROPERTY, {"quantity": quantity, "ratio": float(ratio)}))

    return record


@pytest.fixture
def psu_check(request: pytest.FixtureRequest, psu_target: Target, psu_record: Callable[[str, float], None]) -> Any:
    """A :class:`psu_conformance.compare.Checker` for this test's dtype; messages carry its id."""
    from psu_conformance.compare import Checker

    callspec = getattr(request.node, "callspec", None)
    label = callspec.id if callspec is not None else psu_target.id
    assert psu_target.dtype is not None
    return Checker(psu_target.dtype, label, psu_record)


# ----------------------------------------------------------------------------- the matrix


class MatrixReporter:
    """Registered for a run with a backend: folds reports into the matrix, prints and writes it."""

    def __init__(self, state: SuiteState) -> None:
        self.state = state

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            group = group_of(item.path) if is_suite_path(item.path) else None
            if group is not None:
                item.user_properties.append((GROUP_PROPERTY, group))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.state.matrix.add(report.nodeid, report.outcome, report.user_properties)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            last = (report.longreprtext.strip().splitlines() or [""])[-1]
            self.state.matrix.collection_errors.append(f"{report.nodeid}: {last}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # A pytest-xdist worker leaves the report to the controller; --collect-only ran nothing.
        if hasattr(session.config, "workerinput") or session.config.option.collectonly:
            return
        write_report(self.state.matrix, self.state.report_path)

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        if hasattr(config, "workerinput") or config.option.collectonly:
            return
        state, tr = self.state, terminalreporter
        tr.write_sep("=", f"psu conformance matrix: {state.backend} on {state.device} ({', '.join(state.dtypes)})")
        if state.unavailable is not None:
            tr.write_line(state.unavailable)
        for line in state.matrix.table():
            tr.write_line(line)
        tr.write_line(
            f"worst error/tol: the worst error over its tolerance (1.0 = the limit); groups: {', '.join(GROUPS)}"
        )
        tr.write_line(f"report written to {state.report_path}")
