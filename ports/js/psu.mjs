// PSU, IPSU and RPSU in float64 (SPEC §2, §3): the online form (initState, step) and the whole
// forward pass, which runs the same recurrences over time. Arrays are {shape, data: Float64Array},
// C order, time first; a neuron's flat index is n, so element [t, n] is data[t * N + n].
import { PSUError, fail, isFloating, sameShape, validateCall } from './checks.mjs';
import { seedKey, uniform } from './threefry.mjs';

/** Stable logistic: 1/(1+exp(-z)) for z >= 0, exp(z)/(1+exp(z)) for z < 0 (SPEC §1). */
export const sigmoid = (z) => {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
};

const size = (shape) => shape.reduce((m, d) => m * d, 1);

/** sum_{j <= t} W[t, j] x_j[n] + b_t over the inputs seen so far (IPSU's h, RPSU's logit). */
function mix(w, b, history, t, n) {
  const T = b.length;
  let acc = 0;
  for (let j = 0; j <= t; j++) acc += w[t * T + j] * history[j][n];
  return acc + b[t];
}

/**
 * A zero state for neurons of neuronShape (SPEC §3): after t steps, h (leaky integral, or IPSU's
 * mix), r = (B Q)_{t-1} the decayed resets, q the last reset event (P, the draw R, or IPSU's x),
 * and the inputs seen so far (IPSU, RPSU). T is the horizon of IPSU and RPSU; PSU has none.
 */
export function initState(variant, neuronShape, { T = null } = {}) {
  if (variant !== 'psu' && !(Number.isInteger(T) && T >= 1)) fail('T', `an integer >= 1 for ${variant}`, T);
  const n = size(neuronShape);
  const zeros = new Float64Array(n);
  return { variant, neuronShape: [...neuronShape], T: variant === 'psu' ? null : T, t: 0, h: zeros, r: zeros, q: zeros, history: [] };
}

/** One step on checked parameters p: [new state, {spikes, membrane, reset, probability, logit}] ([N] each;
 * logit: z with P = sigma(z), H for PSU and the mix for RPSU, kept for the gradient's sigma(z) sigma(-z)). */
function advance(state, x, w, b, p) {
  const { t } = state;
  const n = x.length;
  const [h, r, q, v, s] = Array.from({ length: 5 }, () => new Float64Array(n));
  const probability = p.variant === 'ipsu' ? null : new Float64Array(n);
  const logit = p.variant === 'ipsu' ? null : new Float64Array(n);
  const draw = p.sampled ? new Float64Array(n) : null;
  const history = p.variant === 'psu' ? [] : [...state.history, Float64Array.from(x)];
  const key = p.sampled ? seedKey(p.seed) : null;
  for (let i = 0; i < n; i++) {
    r[i] = t > 0 ? p.a * (state.r[i] + state.q[i]) : 0; // a reset at step t-1 first acts now
    if (p.variant === 'ipsu') {
      h[i] = mix(w, b, history, t, i);
      q[i] = x[i];
    } else {
      h[i] = p.a * (state.h[i] + x[i]);
      logit[i] = p.variant === 'rpsu' ? mix(w, b, history, t, i) : h[i];
      q[i] = probability[i] = sigmoid(logit[i]);
      if (draw) q[i] = draw[i] = uniform(key, i, t) < probability[i] ? 1 : 0;
    }
    v[i] = h[i] - p.gamma * r[i];
    s[i] = v[i] > p.threshold ? 1 : 0;
  }
  return [{ ...state, t: t + 1, h, r, q, history }, { spikes: s, membrane: v, reset: draw, probability, logit }];
}

/**
 * One online step (SPEC §3), pure: returns [new state, {spikes, membrane, reset}] for x_t of the
 * state's neuron shape (reset: the draws R_t in sampled mode, else null). Checks the call as one on
 * an input of the horizon's length (SPEC §8), then x_t's shape, then that the step is not past the end.
 */
export function step(state, xt, weight = null, bias = null, options = {}) {
  if (!isFloating(xt)) throw new PSUError('invalid_type', 'x_t', 'x_t must have a floating dtype (float64)');
  const horizon = { shape: [state.T ?? 1, ...state.neuronShape], data: xt.data };
  const p = validateCall(state.variant, horizon, weight, bias, options);
  if (!sameShape(xt.shape, state.neuronShape)) fail('x_t', `of shape [${state.neuronShape}]`, `[${xt.shape}]`);
  if (state.T !== null && state.t >= state.T) {
    fail('step', `below T=${state.T} (${state.variant} was built for T steps)`, `step ${state.t}, past the end`);
  }
  const [next, out] = advance(state, xt.data, weight?.data, bias?.data, p);
  const wrap = (data) => data && { shape: [...state.neuronShape], data };
  return [next, { spikes: wrap(out.spikes), membrane: wrap(out.membrane), reset: wrap(out.reset) }];
}

/**
 * The whole forward pass of variant on x [T, ...]: {spikes, membrane, reset, probability, logit, params},
 * each [T, ...] ({shape, data}); reset (R) only in sampled mode, probability (P) and its logit for PSU and RPSU.
 * options: tau, threshold, reset_scale (null: tied), surrogate_alpha, reset, seed, validate.
 */
export function forward(variant, x, weight = null, bias = null, options = {}) {
  const p = validateCall(variant, x, weight, bias, options);
  if (options.validate && !x.data.every(Number.isFinite)) fail('x', 'finite everywhere (validate)', 'NaN or infinity');
  const n = x.data.length / p.T;
  const out = {};
  let state = initState(variant, x.shape.slice(1), { T: p.T });
  for (let t = 0; t < p.T; t++) {
    let step;
    [state, step] = advance(state, x.data.subarray(t * n, (t + 1) * n), weight?.data, bias?.data, p);
    for (const k in step) if (step[k]) (out[k] ??= new Float64Array(p.T * n)).set(step[k], t * n);
  }
  const stack = (data) => data && { shape: [...x.shape], data };
  return { spikes: stack(out.spikes), membrane: stack(out.membrane), reset: stack(out.reset) ?? null,
    probability: stack(out.probability) ?? null, logit: stack(out.logit) ?? null, params: p };
}

export const psu = (x, options) => forward('psu', x, null, null, options);
export const ipsu = (x, weight, bias, options) => forward('ipsu', x, weight, bias, options);
export const rpsu = (x, weight, bias, options) => forward('rpsu', x, weight, bias, options);
