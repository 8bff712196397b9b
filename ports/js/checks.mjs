// The argument checks of SPEC §8, in the order of the Python backends (variant, x, tau, threshold,
// reset_scale, surrogate_alpha, weight, bias, reset, seed), so that a bad call reports the same
// first problem everywhere. Each throws a PSUError naming the argument.

export const VARIANTS = ['psu', 'ipsu', 'rpsu'];

/** kind: "invalid_type" (SPEC §8 TypeError) or "invalid_value" (ValueError); argument: its name. */
export class PSUError extends Error {
  constructor(kind, argument, message) {
    super(message);
    this.kind = kind;
    this.argument = argument;
  }
}

export const fail = (argument, requirement, got) => {
  throw new PSUError('invalid_value', argument, `${argument} must be ${requirement}, got ${got}`);
};
const show = (v) => (typeof v === 'string' ? JSON.stringify(v) : Array.isArray(v) ? `[${v}]` : String(v));
const finite = (v) => typeof v === 'number' && Number.isFinite(v);
export const sameShape = (a, b) => a.length === b.length && a.every((d, i) => d === b[i]);
export const isFloating = (a) => a.data instanceof Float64Array;

const DEFAULTS = { tau: 2, threshold: 1, reset_scale: null, surrogate_alpha: 2, reset: 'expected', seed: null };

/**
 * Check one call on an input of shape xShape (SPEC §8) and return its parameters:
 * {variant, T, a = 1/tau, threshold, gamma, tied, alpha, sampled, seed (BigInt or null)}.
 */
export function validateCall(variant, x, weight, bias, options) {
  const o = { ...DEFAULTS, ...options };
  if (!VARIANTS.includes(variant)) fail('variant', `one of ${VARIANTS.join(', ')}`, show(variant));
  if (!isFloating(x)) throw new PSUError('invalid_type', 'x', 'x must have a floating dtype (float64)');
  if (x.shape.length < 1 || x.shape[0] < 1) fail('x', 'of shape [T, ...] with T >= 1', show(x.shape));
  const T = x.shape[0];
  if (!(finite(o.tau) && o.tau > 1)) fail('tau', 'a finite number > 1', show(o.tau));
  if (!(finite(o.threshold) && o.threshold > 0)) fail('threshold', 'a finite number > 0', show(o.threshold));
  const tied = o.reset_scale === null;
  if (!tied && !(finite(o.reset_scale) && o.reset_scale >= 0)) {
    fail('reset_scale', 'null (tied to threshold) or a finite number >= 0', show(o.reset_scale));
  }
  if (!(finite(o.surrogate_alpha) && o.surrogate_alpha > 0)) {
    fail('surrogate_alpha', 'a finite number > 0', show(o.surrogate_alpha));
  }
  for (const [name, array, shape] of [['weight', weight, [T, T]], ['bias', bias, [T]]]) {
    if (variant === 'psu' && array) fail(name, 'absent for psu', `an array of shape ${show(array.shape)}`);
    if (variant !== 'psu' && !(array && sameShape(array.shape, shape))) {
      fail(name, `of shape ${show(shape)} for ${variant}`, array ? show(array.shape) : 'none');
    }
  }
  if (o.reset !== 'expected' && o.reset !== 'sampled') fail('reset', '"expected" or "sampled"', show(o.reset));
  const sampled = o.reset === 'sampled';
  if (sampled && variant === 'ipsu') fail('reset', '"expected" for ipsu (it has no reset probability)', '"sampled"');
  const seed = Number.isSafeInteger(o.seed) ? BigInt(o.seed) : o.seed;
  if (sampled && !(typeof seed === 'bigint' && seed >= 0n && seed < 1n << 64n)) {
    fail('seed', 'an integer in [0, 2^64) when reset is "sampled"', show(o.seed));
  }
  const threshold = o.threshold;
  return {
    variant, T, a: 1 / o.tau, threshold, gamma: tied ? threshold : o.reset_scale, tied,
    alpha: o.surrogate_alpha, sampled, seed: sampled ? seed : null,
  };
}
