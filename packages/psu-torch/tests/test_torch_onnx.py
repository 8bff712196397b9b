"""ONNX export (psu_torch._onnx): PSU, IPSU, RPSU and the published preset export with
``torch.onnx.export`` and run in onnxruntime with the float64 reference's spikes (a flip only where
the membrane is within float32 tolerance of the threshold) and its membrane within float32
tolerance; the limits (sampled reset, dynamic T, validate) raise at export with the reason."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.export import Dim

pytest.importorskip("onnxscript", reason="torch.onnx.export (dynamo) needs onnxscript: pip install 'psu-torch[onnx]'")
pytest.importorskip("onnx", reason="torch.onnx.export needs onnx: pip install 'psu-torch[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="the exported models run in onnxruntime: pip install 'psu-torch[onnx]'")

import psu_torch  # noqa: E402
from psu_core import reference  # noqa: E402
from psu_core.tolerances import error_ratio, for_dtype  # noqa: E402
from psu_torch.functional import ONNXExportError  # noqa: E402
from psu_torch.nn import IPSU, PSU, RPSU  # noqa: E402

# torch's exporter itself warns of a deprecation inside torch (LeafSpec), not of this package's code
pytestmark = pytest.mark.filterwarnings("ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated:FutureWarning")

TOL = for_dtype("float32").membrane
T = 6
MODULES = {
    "psu": lambda: PSU(T, threshold=0.5, return_membrane=True),
    "ipsu": lambda: IPSU(T, threshold=0.5, return_membrane=True),
    "rpsu": lambda: RPSU(T, threshold=0.5, return_membrane=True),
    "psu-published": lambda: PSU(T, threshold=0.5, reference_compat=True, return_membrane=True),
    "ipsu-published": lambda: IPSU(T, threshold=0.5, reference_compat=True, return_membrane=True),
    "rpsu-published": lambda: RPSU(T, threshold=0.5, reference_compat=True, return_membrane=True),
}


def _export(model: torch.nn.Module, x: torch.Tensor, tmp_path, **kw) -> ort.InferenceSession:
    path = tmp_path / "model.onnx"
    torch.onnx.export(model, (x,), dynamo=True, verbose=False, **kw).save(str(path))
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _run(session: ort.InferenceSession, x: torch.Tensor) -> list[np.ndarray]:
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})


def _reference(model, x: torch.Tensor):
    """The float64 reference on the module's own parameters, time first ``[T, B, ...]``."""
    xt = x.reshape(T, -1, *x.shape[1:]) if model.reference_compat else x
    learned = [t.detach().double().numpy() for t in model._learned() if t is not None]
    return reference.forward(
        model.variant, xt.double().numpy(), *(learned or [None, None]), tau=model.tau,
        threshold=float(model.threshold), reset_scale=model.reset_scale,
        surrogate_alpha=float(model.surrogate_alpha.detach()),
    )  # fmt: skip


def _flips_outside_band(spikes: np.ndarray, ref, theta: float) -> int:
    """Spikes that differ from the reference where its membrane is farther than the float32
    tolerance from the threshold ``theta`` (a flip inside that band is rounding)."""
    band = TOL.atol + TOL.rtol * np.abs(ref.membrane)
    return int(((spikes != ref.spikes) & (np.abs(ref.membrane - theta) > band)).sum())


@pytest.mark.parametrize("name", list(MODULES))
def test_export_runs_in_onnxruntime_as_the_reference(name, tmp_path):
    torch.manual_seed(1)
    model = MODULES[name]().eval()
    x = torch.randn(T, 4, 3, 5) * 1.5
    if model.reference_compat:
        x = x.reshape(T * 4, 3, 5)  # the published layout [(T*B), ...]
    before = model(x)
    spikes, membrane = _run(_export(model, x, tmp_path), x)
    ref = _reference(model, x)
    shape = ref.spikes.shape
    assert 0.05 < ref.spikes.mean() < 0.95  # spikes both ways: the comparison means something
    assert _flips_outside_band(spikes.reshape(shape), ref, 0.5) == 0
    assert error_ratio(membrane.reshape(shape), ref.membrane, TOL) <= 1.0
    # the eager path is unchanged by the export (nothing traced is left behind in its caches)
    after = model(x)
    assert torch.equal(after.spikes, before.spikes) and torch.equal(after.membrane, before.membrane)


def test_dynamic_batch(tmp_path):
    torch.manual_seed(2)
    model = RPSU(T, threshold=0.5).eval()
    session = _export(model, torch.randn(T, 4, 8), tmp_path, dynamic_shapes=({1: Dim("batch")},))
    x = torch.randn(T, 9, 8)
    (spikes,) = _run(session, x)
    assert spikes.shape == (T, 9, 8)
    ref = _reference(model, x)
    assert _flips_outside_band(spikes, ref, 0.5) == 0


def test_functional_api_exports(tmp_path):
    class Net(torch.nn.Module):
        def forward(self, x):
            return psu_torch.psu(x, tau=3.0, threshold=0.4, reset_scale=0.7, return_membrane=True)

    x = torch.randn(T, 10) * 1.5
    spikes, membrane = _run(_export(Net().eval(), x, tmp_path), x)
    ref = reference.forward("psu", x.double().numpy(), tau=3.0, threshold=0.4, reset_scale=0.7)
    assert _flips_outside_band(spikes, ref, 0.4) == 0
    assert error_ratio(membrane, ref.membrane, TOL) <= 1.0


def _export_error(model: torch.nn.Module, x: torch.Tensor, **kw) -> BaseException:
    with pytest.raises(Exception) as info:  # the exporter wraps the error of its capture step
        torch.onnx.export(model, (x,), dynamo=True, verbose=False, **kw)
    cause = info.value
    while cause is not None and not isinstance(cause, ONNXExportError):
        cause = cause.__cause__
    assert cause is not None, f"no ONNXExportError behind {type(info.value).__name__}: {info.value}"
    return cause


def test_sampled_reset_is_refused_at_export():
    err = _export_error(RPSU(T, reset="sampled").eval(), torch.randn(T, 2, 3))
    assert "reset='sampled' cannot be exported" in str(err)

    class Net(torch.nn.Module):
        def forward(self, x):
            return psu_torch.psu(x, reset="sampled", seed=3)

    assert "reset='sampled'" in str(_export_error(Net().eval(), torch.randn(T, 2, 3)))


@pytest.mark.parametrize("dims", [{0: Dim("T")}, {0: Dim("T"), 1: Dim("batch")}], ids=["T", "T-and-batch"])
def test_dynamic_T_is_refused_at_export(dims):
    err = _export_error(PSU().eval(), torch.randn(T, 2, 3), dynamic_shapes=(dims,))
    assert "number of time steps T must be fixed" in str(err)


def test_validate_is_refused_at_export():
    class Net(torch.nn.Module):
        def forward(self, x):
            return psu_torch.psu(x, validate=True)

    assert "validate=True" in str(_export_error(Net().eval(), torch.randn(T, 2)))


@pytest.mark.parametrize("name", ["psu", "ipsu", "rpsu"])
def test_exported_graph_is_causal_under_nan(name, tmp_path):
    # SPEC §1: a NaN or inf at step 3 leaves steps 0..2 as they were, in the exported graph too
    torch.manual_seed(3)
    model = MODULES[name]().eval()
    x = torch.randn(T, 4, 5) * 1.5
    session = _export(model, x, tmp_path)
    x2 = x.clone()
    x2[3, 0, 0], x2[3, 1, 2] = float("nan"), float("inf")
    (s1, v1), (s2, v2) = _run(session, x), _run(session, x2)
    assert np.array_equal(s1[:3], s2[:3]) and np.array_equal(v1[:3], v2[:3])
    assert not np.isfinite(v2[3, 0, 0]) and np.isin(s2, [0.0, 1.0]).all()
