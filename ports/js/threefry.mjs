// Threefry-2x32-20 and the uniforms of the sampled reset (SPEC §6). Words are uint32 held in
// Numbers: every sum of two or three words is exact below 2^53, and `>>> 0` wraps it mod 2^32.

const ROTATIONS = [13, 15, 26, 6, 17, 29, 16, 24];

/** threefry2x32((k0, k1), (c0, c1)) -> [x0, x1], all uint32. */
export function threefry2x32(k0, k1, c0, c1) {
  const ks = [k0 >>> 0, k1 >>> 0, (k0 ^ k1 ^ 0x1bd11bda) >>> 0];
  let x0 = (c0 + ks[0]) >>> 0;
  let x1 = (c1 + ks[1]) >>> 0;
  for (let i = 0; i < 20; i++) {
    const r = ROTATIONS[i % 8];
    x0 = (x0 + x1) >>> 0;
    x1 = (((x1 << r) | (x1 >>> (32 - r))) ^ x0) >>> 0;
    if (i % 4 === 3) {
      const s = (i + 1) / 4;
      x0 = (x0 + ks[s % 3]) >>> 0;
      x1 = (x1 + ks[(s + 1) % 3] + s) >>> 0;
    }
  }
  return [x0, x1];
}

/** The key of a seed (a BigInt in [0, 2^64)): (low word, high word). */
export const seedKey = (seed) => [Number(seed & 0xffffffffn), Number(seed >> 32n)];

/** u = (w0 >> 8) * 2^-24 for flat neuron n at step t: a multiple of 2^-24 in [0, 1). */
export const uniform = ([k0, k1], n, t) => (threefry2x32(k0, k1, n, t)[0] >>> 8) * 2 ** -24;

/** The uniforms u[t, n] for an input of `shape` = [T, ...neuronShape], as {shape, data}. */
export function uniforms(seed, shape) {
  const key = seedKey(seed);
  const T = shape[0];
  const n = shape.slice(1).reduce((m, d) => m * d, 1);
  const data = new Float64Array(T * n);
  for (let t = 0; t < T; t++) for (let i = 0; i < n; i++) data[t * n + i] = uniform(key, i, t);
  return { shape: [...shape], data };
}
