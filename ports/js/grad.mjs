// The vector-Jacobian products of SPEC §5 (arctan surrogate of §4), as reverse-time recurrences.
import { fail, sameShape } from './checks.mjs';
import { forward, sigmoid } from './psu.mjs';

/** dS/dV = alpha / (2 (1 + q^2)) and dS/dalpha = (V - theta) / (2 (1 + q^2)), q = pi/2 alpha (V - theta). */
export function surrogate(v, threshold, alpha) {
  const d = v - threshold;
  const q = (Math.PI / 2) * alpha * d;
  const denom = 2 * (1 + q * q);
  return [alpha / denom, d / denom];
}

/**
 * dL/d(x, weight, bias, threshold, surrogate_alpha) of the spikes of variant on x [T, ...] for
 * G = gradSpikes = dL/dS (shape of x). x: {shape, data}; weight [T, T], bias [T] (IPSU, RPSU) or
 * null; threshold and surrogate_alpha are numbers. Options as forward's.
 */
export function vjp(variant, x, gradSpikes, weight = null, bias = null, options = {}) {
  const f = forward(variant, x, weight, bias, options);
  if (!sameShape(gradSpikes.shape, x.shape)) fail('grad_spikes', `of the shape of x [${x.shape}]`, `[${gradSpikes.shape}]`);
  const { T, a, gamma, tied, threshold, alpha, sampled } = f.params;
  const G = gradSpikes.data;
  const n = x.data.length / T;
  const len = T * n;
  const V = f.membrane.data;
  const P = f.probability?.data;
  const Z = f.logit?.data;
  // Q: what the reset term decays (SPEC §5): P, the draws R, or IPSU's input.
  const Q = variant === 'ipsu' ? x.data : sampled ? f.reset.data : P;
  const [gV, c, r] = [new Float64Array(len), new Float64Array(len), new Float64Array(len)];
  let dAlpha = 0;
  let dTheta = 0;
  for (let k = 0; k < len; k++) {
    const [dSdV, dSdAlpha] = surrogate(V[k], threshold, alpha);
    gV[k] = G[k] * dSdV;
    dAlpha += G[k] * dSdAlpha;
  }
  for (let t = T - 2; t >= 0; t--) for (let i = 0; i < n; i++) c[t * n + i] = a * (c[(t + 1) * n + i] + gV[(t + 1) * n + i]);
  for (let t = 1; t < T; t++) for (let i = 0; i < n; i++) r[t * n + i] = a * (r[(t - 1) * n + i] + Q[(t - 1) * n + i]);
  for (let k = 0; k < len; k++) dTheta -= gV[k] + (tied ? gV[k] * r[k] : 0);

  // A^T g:  e_{T-1} = a g_{T-1},  e_j = a (g_j + e_{j+1})
  const leakyT = (g) => {
    const e = new Float64Array(len);
    for (let t = T - 1; t >= 0; t--) for (let i = 0; i < n; i++) e[t * n + i] = a * (g[t * n + i] + (t < T - 1 ? e[(t + 1) * n + i] : 0));
    return e;
  };
  // (W ⊙ M)^T g:  out_j = sum_{t >= j} W[t, j] g_t  (the upper triangle of W never enters)
  const maskedT = (g) => {
    const out = new Float64Array(len);
    for (let j = 0; j < T; j++) for (let t = j; t < T; t++) for (let i = 0; i < n; i++) out[j * n + i] += weight.data[t * T + j] * g[t * n + i];
    return out;
  };
  // dW = (g X^T) ⊙ M, db = g summed over neurons
  const outer = (g) => {
    const dW = new Float64Array(T * T);
    const db = new Float64Array(T);
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < n; i++) db[t] += g[t * n + i];
      for (let j = 0; j <= t; j++) for (let i = 0; i < n; i++) dW[t * T + j] += g[t * n + i] * x.data[j * n + i];
    }
    return { weight: { shape: [T, T], data: dW }, bias: { shape: [T], data: db } };
  };
  // The reset path: d/dz of -gamma (B P) at the logit z, -gamma (B^T gV) ⊙ sigma(z) sigma(-z) (SPEC §5:
  // never P (1 - P), whose 1 - P keeps few digits once P is near 1).
  const resetPath = () => Float64Array.from(c, (ck, k) => -gamma * ck * sigmoid(Z[k]) * sigmoid(-Z[k]));
  let dX;
  let learned = { weight: null, bias: null };
  if (variant === 'psu') {
    const gZ = resetPath();
    dX = leakyT(gV.map((g, k) => g + gZ[k]));
  } else if (variant === 'ipsu') {
    dX = maskedT(gV).map((v, k) => v - gamma * c[k]);
    learned = outer(gV);
  } else {
    const gZ = resetPath();
    const viaZ = maskedT(gZ);
    dX = leakyT(gV).map((v, k) => v + viaZ[k]);
    learned = outer(gZ);
  }
  return { x: { shape: [...x.shape], data: dX }, ...learned, threshold: dTheta, surrogate_alpha: dAlpha };
}
