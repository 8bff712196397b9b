"""The float64 reference of PSU, IPSU and RPSU: the oracle behind the golden vectors.

Clarity over speed. Shapes: ``x`` is ``[T, *neuron_shape]``; internally every array is viewed
as ``[T, N]`` (N = product of the neuron shape, C order). ``weight`` is ``[T, T]``, ``bias`` ``[T]``.

Two forward forms (SPEC §2, §3):

* :func:`forward` runs the recurrences one time step at a time through :class:`OnlineStepper`,
  using element-wise IEEE operations only, in a fixed order, so its bits do not depend on the
  BLAS library or on the processor's vector extensions. The golden vectors come from it.
* :func:`forward_dense` is the matrix form ``H = A X``, ``V = H - gamma B Q`` with NumPy matmuls,
  the literal text of the specification, used to check the recurrences.

:func:`vjp` is the analytic vector-Jacobian product of SPEC §5 in reverse-time recurrences;
:func:`vjp_dense` is its matrix form. Reductions use :func:`math.fsum` (exactly rounded) so that
they too are reproducible bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from psu_core import checks, rng
from psu_core.api import PSUOutput, StepOutput

VARIANTS = checks.VARIANTS
HALF_PI = math.pi / 2.0
#: Non-finite inputs are computed, not refused (SPEC §1: NaN and infinities propagate causally,
#: nothing raises): IEEE's invalid and overflow results are the answer, not a warning.
_ieee = np.errstate(invalid="ignore", over="ignore", divide="ignore")


# ----------------------------------------------------------------------------- parameters


Params = checks.Params


def _prepare(
    variant: str,
    x: Any,
    weight: Any,
    bias: Any,
    *,
    tau: Any = 2.0,
    threshold: Any = 1.0,
    reset_scale: Any = None,
    surrogate_alpha: Any = 2.0,
    reset: Any = "expected",
    seed: Any = None,
    validate: bool = False,
) -> tuple[np.ndarray, tuple[int, ...], np.ndarray | None, np.ndarray | None, Params]:
    """Check a call (SPEC §8) and return ``x`` as float64 ``[T, N]``, the shape, W, b, params."""
    x = np.asarray(x)
    w = None if weight is None else np.asarray(weight)
    b = None if bias is None else np.asarray(bias)
    params = checks.validate_call(
        variant,
        x_shape=x.shape,
        x_dtype=str(x.dtype),
        x_is_floating=checks.numpy_is_floating(x.dtype),
        tau=tau,
        threshold=threshold,
        reset_scale=reset_scale,
        surrogate_alpha=surrogate_alpha,
        weight_shape=None if w is None else w.shape,
        bias_shape=None if b is None else b.shape,
        reset=reset,
        seed=seed,
    )
    if validate:
        checks.check_finite(bool(np.isfinite(x).all()))
    shape = tuple(x.shape)
    x2 = x.astype(np.float64).reshape(shape[0], -1)
    w = None if w is None else w.astype(np.float64)
    b = None if b is None else b.astype(np.float64)
    return x2, shape, w, b, params


# ----------------------------------------------------------------------------- pointwise pieces


def _exp(z: np.ndarray) -> np.ndarray:
    # libm's exp rather than NumPy's vectorised one: NumPy picks an exp kernel by CPU feature,
    # and the golden vectors must come out bit-identical on every machine.
    z = np.asarray(z, dtype=np.float64)
    return np.fromiter(map(math.exp, z.ravel().tolist()), dtype=np.float64, count=z.size).reshape(z.shape)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Stable logistic: ``1/(1+exp(-z))`` for ``z >= 0``, ``exp(z)/(1+exp(z))`` for ``z < 0``."""
    z = np.asarray(z, dtype=np.float64)
    e = _exp(-np.abs(z))  # never overflows
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_derivative(z: np.ndarray) -> np.ndarray:
    """``dP/dz = sigma(z) sigma(-z)`` (SPEC §5), both factors stable sigmoids of the logit ``z``.

    Never ``P (1 - P)`` from a rounded ``P``: for ``z >~ 20`` ``1 - P`` keeps few digits even in
    float64, while ``sigma(-z)`` keeps all of them.
    """
    return sigmoid(z) * sigmoid(-np.asarray(z, dtype=np.float64))


def surrogate(v: np.ndarray, threshold: float, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Arctan surrogate (SPEC §4): returns ``(dS/dV, dS/dalpha)`` at membrane ``v``.

    ``q = pi/2 * alpha * (v - theta)``; ``dS/dV = alpha / (2 (1 + q^2))``;
    ``dS/dalpha = (v - theta) / (2 (1 + q^2))``.
    """
    d = np.asarray(v, dtype=np.float64) - threshold
    q = HALF_PI * alpha * d
    denom = 2.0 * (1.0 + q * q)
    return alpha / denom, d / denom


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Forward:
    """Forward results, each ``[T, *neuron_shape]`` float64 (``None`` where not defined)."""

    spikes: np.ndarray
    membrane: np.ndarray
    reset_probability: np.ndarray | None  # P (PSU, RPSU)
    reset: np.ndarray | None  # R (sampled mode)
    uniform: np.ndarray | None  # u (sampled mode)
    logit: np.ndarray | None = None  # z, P = sigma(z): H (PSU), (W⊙M) X + b (RPSU)


@dataclass(frozen=True)
class Gradients:
    """Vector-Jacobian product: ``x`` like the input; ``weight [T, T]``, ``bias [T]`` or None."""

    x: np.ndarray
    weight: np.ndarray | None
    bias: np.ndarray | None
    threshold: float
    surrogate_alpha: float


# ----------------------------------------------------------------------------- online form


@dataclass(frozen=True)
class OnlineState:
    """The state of an online layer after ``t`` steps (SPEC §3), float64 ``[N]`` arrays.

    ``h``: the leaky integral (PSU, RPSU) or the mix (IPSU) of the last step; ``r``: the decayed
    resets ``(B Q)``; ``q``: the last reset event (``p``, the draw ``R``, or ``x`` for IPSU);
    ``history``: the inputs seen so far (IPSU, RPSU: their ``[T, T]`` matrix mixes all of them).
    ``T`` is the horizon (IPSU/RPSU; ``None`` for PSU, which has no end).
    """

    variant: str
    neuron_shape: tuple[int, ...]
    T: int | None
    t: int
    h: np.ndarray
    r: np.ndarray
    q: np.ndarray
    history: tuple[np.ndarray, ...] = ()


def init_state(
    variant: str, neuron_shape: Any, *, T: int | None = None, dtype: Any = "float64", device: Any = "cpu"
) -> OnlineState:
    """A zero state for ``neuron_shape`` neurons; ``T`` is required for IPSU/RPSU (their horizon).

    The reference holds its state in float64 on the CPU whatever is asked: ``dtype`` must be
    float64 and ``device`` "cpu".
    """
    variant = checks.check_variant(variant)
    if str(np.dtype(dtype)) != "float64":
        raise ValueError(f"dtype must be float64 (the reference computes in float64), got {dtype!r}")
    if device not in ("cpu", None):
        raise ValueError(f"device must be 'cpu' (the reference runs on the CPU), got {device!r}")
    if variant != "psu" and (T is None or isinstance(T, bool) or int(T) < 1):
        raise ValueError(f"T must be an integer >= 1 for variant {variant!r} (the [T, T] horizon), got {T!r}")
    shape = tuple(int(d) for d in neuron_shape)
    n = math.prod(shape)
    zeros = np.zeros(n)
    return OnlineState(variant, shape, None if variant == "psu" else int(T), 0, zeros, zeros, zeros)


def _mix(w: np.ndarray, b: np.ndarray, history: tuple[np.ndarray, ...], t: int) -> np.ndarray:
    """``sum_{j<=t} W[t, j] x_j + b_t``, accumulated in ascending ``j``."""
    acc = w[t, 0] * history[0]
    for j in range(1, t + 1):
        acc = acc + w[t, j] * history[j]
    return acc + b[t]


@dataclass(frozen=True)
class _Advance:
    """One step: the new state and everything the step computed, ``[N]`` float64."""

    state: OnlineState
    spikes: np.ndarray
    membrane: np.ndarray
    reset_probability: np.ndarray | None
    reset: np.ndarray | None
    uniform: np.ndarray | None
    logit: np.ndarray | None


@_ieee
def _advance(state: OnlineState, x: np.ndarray, w: Any, b: Any, p_: Params) -> _Advance:
    """SPEC §3 for step ``state.t`` with input ``x [N]`` (float64), checked parameters ``p_``."""
    t, a = state.t, p_.decay
    # r_t = a (r_{t-1} + q_{t-1}): the reset of step t-1 first acts now (B is strictly causal).
    r = a * (state.r + state.q) if t > 0 else state.r
    history = state.history + (x,) if p_.variant != "psu" else ()
    if p_.variant == "ipsu":
        h = _mix(w, b, history, t)
        q = x
        prob = z = None
    else:
        h = a * (state.h + x)
        z = _mix(w, b, history, t) if p_.variant == "rpsu" else h
        prob = sigmoid(z)
        q = prob
    u = draw = None
    if p_.sampled:
        k0, k1 = rng.seed_key(p_.seed)  # type: ignore[arg-type]
        w0, _ = rng.threefry2x32(k0, k1, np.arange(x.size, dtype=np.uint64), np.uint64(t))
        u = rng.bits_to_uniform(w0)
        draw = (u < prob).astype(np.float64)
        q = draw
    v = h - p_.gamma * r
    s = (v > p_.threshold).astype(np.float64)
    new = OnlineState(state.variant, state.neuron_shape, state.T, t + 1, h, r, q, history)
    return _Advance(new, s, v, prob, draw, u, z)


def _check_step(state: OnlineState, x_t: Any, weight: Any, bias: Any, params: dict[str, Any]):
    x_t, w, b = (
        np.asarray(x_t),
        None if weight is None else np.asarray(weight),
        None if bias is None else np.asarray(bias),
    )
    p_ = checks.validate_step(
        state.variant, t=state.t, horizon=state.T, neuron_shape=state.neuron_shape, x_shape=x_t.shape,
        x_dtype=str(x_t.dtype), x_is_floating=checks.numpy_is_floating(x_t.dtype),
        weight_shape=None if w is None else w.shape, bias_shape=None if b is None else b.shape, **params,
    )  # fmt: skip
    cast = lambda a: None if a is None else a.astype(np.float64)  # noqa: E731
    return x_t.astype(np.float64).reshape(-1), cast(w), cast(b), p_


def step(
    state: OnlineState,
    x_t: Any,
    weight: Any = None,
    bias: Any = None,
    *,
    tau: Any = 2.0,
    threshold: Any = 1.0,
    reset_scale: Any = None,
    surrogate_alpha: Any = 2.0,
    reset: Any = "expected",
    seed: Any = None,
) -> tuple[OnlineState, StepOutput]:
    """One online step (SPEC §3), pure: returns the new state and ``StepOutput(spikes, membrane,
    reset)`` for input ``x_t [*neuron_shape]``; ``state`` is left as it was."""
    params = dict(tau=tau, threshold=threshold, reset_scale=reset_scale, surrogate_alpha=surrogate_alpha,
                  reset=reset, seed=seed)  # fmt: skip
    x, w, b, p_ = _check_step(state, x_t, weight, bias, params)
    adv = _advance(state, x, w, b, p_)
    shape = state.neuron_shape
    draw = None if adv.reset is None else adv.reset.reshape(shape)
    return adv.state, StepOutput(adv.spikes.reshape(shape), adv.membrane.reshape(shape), draw)


class OnlineStepper:
    """The stateful wrapper of :func:`init_state` and :func:`step`: ``step(x_t) -> StepOutput``.

    Holds the layer's weight, bias and parameters and the current ``state``; ``reset_state()``
    starts over. IPSU and RPSU stop after ``T = weight.shape[0]`` steps.
    """

    def __init__(
        self,
        variant: str,
        neuron_shape: Any,
        weight: Any = None,
        bias: Any = None,
        *,
        tau: Any = 2.0,
        threshold: Any = 1.0,
        reset_scale: Any = None,
        surrogate_alpha: Any = 2.0,
        reset: Any = "expected",
        seed: Any = None,
        dtype: Any = "float64",
        device: Any = "cpu",
    ) -> None:
        self.variant = checks.check_variant(variant)
        self.weight, self.bias = weight, bias
        self.params = dict(tau=tau, threshold=threshold, reset_scale=reset_scale, surrogate_alpha=surrogate_alpha,
                           reset=reset, seed=seed)  # fmt: skip
        self._init = dict(T=None if weight is None else np.shape(weight)[0], dtype=dtype, device=device)
        self.neuron_shape = tuple(int(d) for d in neuron_shape)
        # Check the parameters now, as for a whole input of the horizon: same rules, same messages.
        _prepare(variant, np.zeros((self._init["T"] or 1, *self.neuron_shape)), weight, bias, **self.params)
        self.reset_state()

    def reset_state(self) -> None:
        self.state = init_state(self.variant, self.neuron_shape, **self._init)

    def step(self, x_t: Any) -> StepOutput:
        self.state, out = step(self.state, x_t, self.weight, self.bias, **self.params)
        return out


@_ieee
def forward(variant: str, x: Any, weight: Any = None, bias: Any = None, **params: Any) -> Forward:
    """Recurrence form (SPEC §3), bit-reproducible: drives :class:`OnlineStepper` over ``x``.

    ``x [T, *neuron_shape]`` -> spikes, membrane, P, R, u, each ``[T, *neuron_shape]``.
    """
    x2, shape, w, b, p_ = _prepare(variant, x, weight, bias, **params)
    state = init_state(variant, shape[1:], T=shape[0])
    keys = ("spikes", "membrane", "reset_probability", "reset", "uniform", "logit")
    outs: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for t in range(shape[0]):
        adv = _advance(state, x2[t], w, b, p_)
        state = adv.state
        for k in keys:
            val = getattr(adv, k)
            if val is not None:
                outs[k].append(val.reshape(shape[1:]))
    stacked = {k: (np.stack(v) if v else None) for k, v in outs.items()}
    return Forward(**stacked)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- public API (SPEC §11)

METHODS = ("auto", "recurrence", "dense")


def _call(variant: str, x: Any, weight: Any, bias: Any, method: Any, return_membrane: bool, return_reset: bool,
          **params: Any) -> Any:  # fmt: skip
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    out = (forward_dense if method == "dense" else forward)(variant, x, weight, bias, **params)
    if not (return_membrane or return_reset):
        return out.spikes
    return PSUOutput(out.spikes, out.membrane if return_membrane else None, out.reset if return_reset else None)


def psu(
    x: Any,
    *,
    tau: Any = 2.0,
    threshold: Any = 1.0,
    reset_scale: Any = None,
    surrogate_alpha: Any = 2.0,
    reset: Any = "expected",
    seed: Any = None,
    method: str = "auto",
    return_membrane: bool = False,
    return_reset: bool = False,
    validate: bool = False,
) -> Any:
    """PSU (SPEC §2) in float64: spikes ``[T, *neuron_shape]``, or ``PSUOutput(spikes, membrane,
    reset)`` when ``return_membrane``/``return_reset``. ``method``: "recurrence" (= "auto") or "dense"."""
    return _call("psu", x, None, None, method, return_membrane, return_reset, tau=tau, threshold=threshold,
                 reset_scale=reset_scale, surrogate_alpha=surrogate_alpha, reset=reset, seed=seed, validate=validate)  # fmt: skip


def ipsu(
    x: Any,
    weight: Any,
    bias: Any,
    *,
    tau: Any = 2.0,
    threshold: Any = 1.0,
    reset_scale: Any = None,
    surrogate_alpha: Any = 2.0,
    reset: Any = "expected",
    seed: Any = None,
    method: str = "auto",
    return_membrane: bool = False,
    return_reset: bool = False,
    validate: bool = False,
) -> Any:
    """IPSU (SPEC §2) in float64, ``weight [T, T]``, ``bias [T]``; outputs as :func:`psu`."""
    return _call("ipsu", x, weight, bias, method, return_membrane, return_reset, tau=tau, threshold=threshold,
                 reset_scale=reset_scale, surrogate_alpha=surrogate_alpha, reset=reset, seed=seed, validate=validate)  # fmt: skip


def rpsu(
    x: Any,
    weight: Any,
    bias: Any,
    *,
    tau: Any = 2.0,
    threshold: Any = 1.0,
    reset_scale: Any = None,
    surrogate_alpha: Any = 2.0,
    reset: Any = "expected",
    seed: Any = None,
    method: str = "auto",
    return_membrane: bool = False,
    return_reset: bool = False,
    validate: bool = False,
) -> Any:
    """RPSU (SPEC §2) in float64, ``weight [T, T]``, ``bias [T]``; outputs as :func:`psu`."""
    return _call("rpsu", x, weight, bias, method, return_membrane, return_reset, tau=tau, threshold=threshold,
                 reset_scale=reset_scale, surrogate_alpha=surrogate_alpha, reset=reset, seed=seed, validate=validate)  # fmt: skip


# ----------------------------------------------------------------------------- dense form


def decay_matrices(T: int, tau: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``A[t,j] = a^(t-j+1)`` (j<=t), ``B[t,j] = a^(t-j)`` (j<t), ``M[t,j] = 1`` (j<=t)."""
    a = 1.0 / tau
    d = np.arange(T)[:, None] - np.arange(T)[None, :]
    M = (d >= 0).astype(np.float64)
    A = np.where(d >= 0, a ** (d + 1.0), 0.0)
    B = np.where(d > 0, a ** np.maximum(d, 0).astype(np.float64), 0.0)
    return A, B, M


def causal_matmul(L: np.ndarray, X: np.ndarray, strict: bool = False) -> np.ndarray:
    """``L @ X`` for a lower-triangular ``L [T, T]`` (``strict``: zero diagonal too) and ``X [T, N]``,
    causal whatever ``X`` holds (SPEC §1): row ``t`` depends on rows ``0..t`` (``0..t-1``) of ``X``
    only, even where a later row is NaN or infinite (a plain matmul gives ``0 * NaN = NaN`` above
    the diagonal).

    ``X - Xf`` (``Xf``: ``X`` with its non-finite values set to 0) is exactly 0 where ``X`` is
    finite and non-finite elsewhere, so its running sum adds +0 to every row before the first
    non-finite one and makes the rest non-finite; ``strict`` shifts the sum down one row.
    """
    finite = np.where(np.isfinite(X), X, 0.0)
    with np.errstate(invalid="ignore"):
        carry = np.cumsum(X - finite, axis=0)
        if strict:
            carry = np.concatenate([np.zeros_like(carry[:1]), carry[:-1]])
        return L @ finite + carry


def masked(w: np.ndarray, M: np.ndarray) -> np.ndarray:
    """``W ⊙ M`` as a selection, never a product: the upper triangle is 0 even where W is NaN."""
    return np.where(M > 0, w, 0.0)


def _dense_parts(x2: np.ndarray, w, b, p_: Params) -> dict[str, np.ndarray | None]:
    T = x2.shape[0]
    A, B, M = decay_matrices(T, p_.tau)
    WM = None if w is None else masked(w, M)
    Z = None
    if p_.variant == "ipsu":
        H = causal_matmul(WM, x2) + b[:, None]
        P = None
        Q = x2
    else:
        H = causal_matmul(A, x2)
        Z = H if p_.variant == "psu" else causal_matmul(WM, x2) + b[:, None]
        P = sigmoid(Z)
        Q = P
    u = R = None
    if p_.sampled:
        u = rng.uniforms(p_.seed, x2.shape)  # type: ignore[arg-type]
        R = (u < P).astype(np.float64)
        Q = R
    with np.errstate(invalid="ignore"):  # inf - inf where an input is infinite: NaN, as specified
        V = H - p_.gamma * causal_matmul(B, Q, strict=True)
    return {"A": A, "B": B, "M": M, "WM": WM, "H": H, "Z": Z, "P": P, "Q": Q, "V": V, "R": R, "u": u}


@_ieee
def forward_dense(variant: str, x: Any, weight: Any = None, bias: Any = None, **params: Any) -> Forward:
    """Matrix form (SPEC §2): ``H = A X`` (or ``(W⊙M) X + b``), ``V = H - gamma B Q``."""
    x2, shape, w, b, p_ = _prepare(variant, x, weight, bias, **params)
    d = _dense_parts(x2, w, b, p_)
    V = d["V"]
    back = lambda a: None if a is None else a.reshape(shape)  # noqa: E731
    return Forward(
        spikes=(V > p_.threshold).astype(np.float64).reshape(shape),
        membrane=V.reshape(shape),
        reset_probability=back(d["P"]),
        reset=back(d["R"]),
        uniform=back(d["u"]),
        logit=back(d["Z"]),
    )


# ----------------------------------------------------------------------------- gradients


def _fsum_rows(m: np.ndarray) -> np.ndarray:
    return np.array([math.fsum(row.tolist()) for row in m])


@_ieee
def vjp(variant: str, x: Any, grad_spikes: Any, weight: Any = None, bias: Any = None, **params: Any) -> Gradients:
    """Analytic VJP of SPEC §5 in reverse-time recurrences. ``grad_spikes`` is ``[T, ...]`` like x."""
    x2, shape, w, b, p_ = _prepare(variant, x, weight, bias, **params)
    G = np.asarray(grad_spikes, dtype=np.float64)
    if G.shape != shape:
        raise ValueError(f"grad_spikes must have the shape of x {list(shape)}, got {list(G.shape)}")
    G = G.reshape(x2.shape)
    params.pop("validate", None)
    fwd = forward(variant, x, weight, bias, **params)
    T = x2.shape[0]
    a, gamma = p_.decay, p_.gamma
    V = fwd.membrane.reshape(x2.shape)
    dSdV, dSdalpha = surrogate(V, p_.threshold, p_.surrogate_alpha)
    gV = G * dSdV

    # c = B^T gV:  c_{T-1} = 0,  c_j = a (c_{j+1} + gV_{j+1})
    c = np.zeros_like(gV)
    for j in range(T - 2, -1, -1):
        c[j] = a * (c[j + 1] + gV[j + 1])

    # The reset term's input Q and its decayed sum r = B Q, needed for the tied-threshold path.
    if variant == "ipsu":
        Q = x2
    else:
        Q = (fwd.reset if p_.sampled else fwd.reset_probability).reshape(x2.shape)  # type: ignore[union-attr]
    r = np.zeros_like(Q)
    for t in range(1, T):
        r[t] = a * (r[t - 1] + Q[t - 1])

    d_alpha = math.fsum((G * dSdalpha).ravel().tolist())
    d_theta = -math.fsum(gV.ravel().tolist())
    if p_.tied:
        d_theta -= math.fsum((gV * r).ravel().tolist())

    def leaky_transpose(g: np.ndarray) -> np.ndarray:
        # A^T g:  e_T = 0,  e_j = a (g_j + e_{j+1})
        e = np.zeros_like(g)
        e[T - 1] = a * g[T - 1]
        for j in range(T - 2, -1, -1):
            e[j] = a * (g[j] + e[j + 1])
        return e

    def masked_transpose(g: np.ndarray) -> np.ndarray:
        # (W ⊙ M)^T g:  out_j = sum_{t >= j} W[t, j] g_t, accumulated in ascending t
        out = np.zeros_like(g)
        for j in range(T):
            acc = w[j, j] * g[j]
            for t in range(j + 1, T):
                acc = acc + w[t, j] * g[t]
            out[j] = acc
        return out

    def outer_masked(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # dW = (g X^T) ⊙ M and db = g summed over neurons
        dW = np.zeros((T, T))
        for t in range(T):
            for j in range(t + 1):
                dW[t, j] = math.fsum((g[t] * x2[j]).tolist())
        return dW, _fsum_rows(g)

    dW = db = None
    if variant != "ipsu":
        dP = sigmoid_derivative(fwd.logit.reshape(x2.shape))  # type: ignore[union-attr]
    if variant == "psu":
        gH = gV - gamma * c * dP
        dX = leaky_transpose(gH)
    elif variant == "ipsu":
        dX = masked_transpose(gV) - gamma * c
        dW, db = outer_masked(gV)
    else:
        gZ = -gamma * c * dP
        dX = leaky_transpose(gV) + masked_transpose(gZ)
        dW, db = outer_masked(gZ)
    return Gradients(x=dX.reshape(shape), weight=dW, bias=db, threshold=d_theta, surrogate_alpha=d_alpha)


@_ieee
def vjp_dense(variant: str, x: Any, grad_spikes: Any, weight: Any = None, bias: Any = None, **params: Any) -> Gradients:
    """The same VJP in the matrix form of SPEC §5 (NumPy matmuls), to check :func:`vjp`."""
    x2, shape, w, b, p_ = _prepare(variant, x, weight, bias, **params)
    G = np.asarray(grad_spikes, dtype=np.float64).reshape(x2.shape)
    d = _dense_parts(x2, w, b, p_)
    A, B, M, WM, Q, V = d["A"], d["B"], d["M"], d["WM"], d["Q"], d["V"]
    gamma = p_.gamma
    dSdV, dSdalpha = surrogate(V, p_.threshold, p_.surrogate_alpha)
    gV = G * dSdV
    dW = db = None
    if variant == "psu":
        dX = A.T @ (gV - gamma * (B.T @ gV) * sigmoid_derivative(d["Z"]))
    elif variant == "ipsu":
        dX = WM.T @ gV - gamma * B.T @ gV
        dW, db = (gV @ x2.T) * M, gV.sum(axis=1)
    else:
        gZ = -gamma * (B.T @ gV) * sigmoid_derivative(d["Z"])
        dX = A.T @ gV + WM.T @ gZ
        dW, db = (gZ @ x2.T) * M, gZ.sum(axis=1)
    d_theta = -gV.sum() - (float((gV * (B @ Q)).sum()) if p_.tied else 0.0)
    return Gradients(
        x=dX.reshape(shape), weight=dW, bias=db, threshold=float(d_theta), surrogate_alpha=float((G * dSdalpha).sum())
    )
