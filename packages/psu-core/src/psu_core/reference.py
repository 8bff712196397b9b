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

VARIANTS = checks.VARIANTS
HALF_PI = math.pi / 2.0


# ----------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class Params:
    """Validated neuron parameters (SPEC §1)."""

    variant: str
    tau: float = 2.0
    threshold: float = 1.0
    reset_scale: float | None = None
    surrogate_alpha: float = 2.0
    reset: str = "expected"
    seed: int | None = None

    @property
    def decay(self) -> float:
        """``a = 1 / tau``: the decay and the input gain."""
        return 1.0 / self.tau

    @property
    def gamma(self) -> float:
        """The reset scale: ``threshold`` when tied (``reset_scale=None``)."""
        return self.threshold if self.reset_scale is None else self.reset_scale

    @property
    def tied(self) -> bool:
        return self.reset_scale is None

    @property
    def sampled(self) -> bool:
        return self.reset == "sampled"


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
    checks.validate_call(
        variant,
        x_shape=x.shape,
        x_dtype=str(x.dtype),
        x_is_floating=bool(np.issubdtype(x.dtype, np.floating)),
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
    params = Params(
        variant=variant,
        tau=float(tau),
        threshold=float(threshold),
        reset_scale=None if reset_scale is None else float(reset_scale),
        surrogate_alpha=float(surrogate_alpha),
        reset=reset,
        seed=None if reset == "expected" else int(seed),
    )
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


@dataclass(frozen=True)
class Gradients:
    """Vector-Jacobian product: ``x`` like the input; ``weight [T, T]``, ``bias [T]`` or None."""

    x: np.ndarray
    weight: np.ndarray | None
    bias: np.ndarray | None
    threshold: float
    surrogate_alpha: float


# ----------------------------------------------------------------------------- online form


class OnlineStepper:
    """One time step at a time, no look-ahead (SPEC §3). ``step(x_t) -> (s_t, v_t)``.

    PSU state: the step count ``t``, ``h`` (leaky integral), ``r`` (decayed resets) and the last
    reset event ``q`` (``p`` in expected mode, the draw ``R`` in sampled mode), each
    ``[*neuron_shape]``. IPSU and RPSU also keep the inputs seen so far, because their learned
    ``[T, T]`` matrix mixes the whole history; they stop after ``T`` steps.

    After each step, ``last`` holds the step's ``p`` (or ``None``), ``R`` and ``u`` (or ``None``).
    """

    def __init__(
        self,
        variant: str,
        neuron_shape: tuple[int, ...],
        weight: Any = None,
        bias: Any = None,
        *,
        tau: Any = 2.0,
        threshold: Any = 1.0,
        reset_scale: Any = None,
        surrogate_alpha: Any = 2.0,
        reset: Any = "expected",
        seed: Any = None,
    ) -> None:
        neuron_shape = tuple(int(d) for d in neuron_shape)
        horizon = 1 if weight is None else np.asarray(weight).shape[0]
        # Validate as for a whole input of `horizon` steps: same rules, same messages.
        _, _, self._w, self._b, self.params = _prepare(
            variant,
            np.zeros((max(horizon, 1), *neuron_shape)),
            weight,
            bias,
            tau=tau,
            threshold=threshold,
            reset_scale=reset_scale,
            surrogate_alpha=surrogate_alpha,
            reset=reset,
            seed=seed,
        )
        self.neuron_shape = neuron_shape
        n = int(np.prod(neuron_shape, dtype=np.int64))
        self.t = 0
        self.h = np.zeros(n)
        self.r = np.zeros(n)
        self.q = np.zeros(n)
        self.history: list[np.ndarray] = []
        self.last: dict[str, np.ndarray | None] = {}
        if self.params.sampled:
            self._key = rng.seed_key(self.params.seed)  # type: ignore[arg-type]
            self._n = np.arange(n, dtype=np.uint64)

    def _mix(self, t: int) -> np.ndarray:
        """``sum_{j<=t} W[t, j] x_j + b_t``, accumulated in ascending ``j``."""
        assert self._w is not None and self._b is not None
        acc = self._w[t, 0] * self.history[0]
        for j in range(1, t + 1):
            acc = acc + self._w[t, j] * self.history[j]
        return acc + self._b[t]

    def step(self, x_t: Any) -> tuple[np.ndarray, np.ndarray]:
        """Advance one step with input ``x_t [*neuron_shape]``; return spikes and membrane."""
        p_ = self.params
        x_t = np.asarray(x_t)
        if not np.issubdtype(x_t.dtype, np.floating):
            raise TypeError(f"x_t must have a floating dtype, got {x_t.dtype}")
        if tuple(x_t.shape) != self.neuron_shape:
            raise ValueError(f"x_t must have shape {list(self.neuron_shape)}, got {list(x_t.shape)}")
        t = self.t
        if self._w is not None and t >= self._w.shape[0]:
            raise ValueError(f"step {t} is past the end: {p_.variant} was built for T={self._w.shape[0]} steps")
        x = x_t.astype(np.float64).reshape(-1)
        a = p_.decay
        # r_t = a (r_{t-1} + q_{t-1}): the reset of step t-1 first acts now (B is strictly causal).
        if t > 0:
            self.r = a * (self.r + self.q)
        if p_.variant == "ipsu":
            self.history.append(x)
            self.h = self._mix(t)
            self.q = x
            prob = None
        else:
            self.h = a * (self.h + x)
            if p_.variant == "rpsu":
                self.history.append(x)
                prob = sigmoid(self._mix(t))
            else:
                prob = sigmoid(self.h)
            self.q = prob
        u = draw = None
        if p_.sampled:
            w0, _ = rng.threefry2x32(self._key[0], self._key[1], self._n, np.uint64(t))
            u = rng.bits_to_uniform(w0)
            draw = (u < prob).astype(np.float64)
            self.q = draw
        v = self.h - p_.gamma * self.r
        s = (v > p_.threshold).astype(np.float64)
        self.t = t + 1
        shape = self.neuron_shape
        self.last = {
            "reset_probability": None if prob is None else prob.reshape(shape),
            "reset": None if draw is None else draw.reshape(shape),
            "uniform": None if u is None else u.reshape(shape),
        }
        return s.reshape(shape), v.reshape(shape)


def forward(variant: str, x: Any, weight: Any = None, bias: Any = None, **params: Any) -> Forward:
    """Recurrence form (SPEC §3), bit-reproducible: drives :class:`OnlineStepper` over ``x``.

    ``x [T, *neuron_shape]`` -> spikes, membrane, P, R, u, each ``[T, *neuron_shape]``.
    """
    x2, shape, _, _, _ = _prepare(variant, x, weight, bias, **params)
    params.pop("validate", None)
    stepper = OnlineStepper(variant, shape[1:], weight, bias, **params)
    outs: dict[str, list[np.ndarray]] = {k: [] for k in ("spikes", "membrane", "reset_probability", "reset", "uniform")}
    for t in range(shape[0]):
        s, v = stepper.step(x2[t].reshape(shape[1:]))
        outs["spikes"].append(s)
        outs["membrane"].append(v)
        for k, val in stepper.last.items():
            if val is not None:
                outs[k].append(val)
    stacked = {k: (np.stack(v) if v else None) for k, v in outs.items()}
    return Forward(**stacked)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- dense form


def decay_matrices(T: int, tau: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``A[t,j] = a^(t-j+1)`` (j<=t), ``B[t,j] = a^(t-j)`` (j<t), ``M[t,j] = 1`` (j<=t)."""
    a = 1.0 / tau
    d = np.arange(T)[:, None] - np.arange(T)[None, :]
    M = (d >= 0).astype(np.float64)
    A = np.where(d >= 0, a ** (d + 1.0), 0.0)
    B = np.where(d > 0, a ** np.maximum(d, 0).astype(np.float64), 0.0)
    return A, B, M


def _dense_parts(x2: np.ndarray, w, b, p_: Params) -> dict[str, np.ndarray | None]:
    T = x2.shape[0]
    A, B, M = decay_matrices(T, p_.tau)
    if p_.variant == "ipsu":
        H = (w * M) @ x2 + b[:, None]
        P = None
        Q = x2
    else:
        H = A @ x2
        Z = H if p_.variant == "psu" else (w * M) @ x2 + b[:, None]
        P = sigmoid(Z)
        Q = P
    u = R = None
    if p_.sampled:
        u = rng.uniforms(p_.seed, x2.shape)  # type: ignore[arg-type]
        R = (u < P).astype(np.float64)
        Q = R
    V = H - p_.gamma * (B @ Q)
    return {"A": A, "B": B, "M": M, "H": H, "P": P, "Q": Q, "V": V, "R": R, "u": u}


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
    )


# ----------------------------------------------------------------------------- gradients


def _fsum_rows(m: np.ndarray) -> np.ndarray:
    return np.array([math.fsum(row.tolist()) for row in m])


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
    if variant == "psu":
        P = fwd.reset_probability.reshape(x2.shape)  # type: ignore[union-attr]
        gH = gV - gamma * c * P * (1.0 - P)
        dX = leaky_transpose(gH)
    elif variant == "ipsu":
        dX = masked_transpose(gV) - gamma * c
        dW, db = outer_masked(gV)
    else:
        P = fwd.reset_probability.reshape(x2.shape)  # type: ignore[union-attr]
        gZ = -gamma * c * P * (1.0 - P)
        dX = leaky_transpose(gV) + masked_transpose(gZ)
        dW, db = outer_masked(gZ)
    return Gradients(x=dX.reshape(shape), weight=dW, bias=db, threshold=d_theta, surrogate_alpha=d_alpha)


def vjp_dense(variant: str, x: Any, grad_spikes: Any, weight: Any = None, bias: Any = None, **params: Any) -> Gradients:
    """The same VJP in the matrix form of SPEC §5 (NumPy matmuls), to check :func:`vjp`."""
    x2, shape, w, b, p_ = _prepare(variant, x, weight, bias, **params)
    G = np.asarray(grad_spikes, dtype=np.float64).reshape(x2.shape)
    d = _dense_parts(x2, w, b, p_)
    A, B, M, P, Q, V = d["A"], d["B"], d["M"], d["P"], d["Q"], d["V"]
    gamma = p_.gamma
    dSdV, dSdalpha = surrogate(V, p_.threshold, p_.surrogate_alpha)
    gV = G * dSdV
    dW = db = None
    if variant == "psu":
        dX = A.T @ (gV - gamma * (B.T @ gV) * P * (1 - P))
    elif variant == "ipsu":
        dX = (w * M).T @ gV - gamma * B.T @ gV
        dW, db = (gV @ x2.T) * M, gV.sum(axis=1)
    else:
        gZ = -gamma * (B.T @ gV) * P * (1 - P)
        dX = A.T @ gV + (w * M).T @ gZ
        dW, db = (gZ @ x2.T) * M, gZ.sum(axis=1)
    d_theta = -gV.sum() - (float((gV * (B @ Q)).sum()) if p_.tied else 0.0)
    return Gradients(
        x=dX.reshape(shape), weight=dW, bias=db, threshold=float(d_theta), surrogate_alpha=float((G * dSdalpha).sum())
    )
