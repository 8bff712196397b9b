// The suite's exec protocol (conformance/PORTING.md, "Protocol"): one JSON request per line on
// stdin, one JSON reply per line on stdout. Run: --psu-backend exec:"node ports/js/adapter.mjs"
import { createInterface } from 'node:readline';
import { vjp } from './grad.mjs';
import { PSUError } from './checks.mjs';
import { forward, initState, step } from './psu.mjs';
import { threefry2x32, uniforms } from './threefry.mjs';

// Non-finite floats travel as the strings "NaN", "Infinity", "-Infinity"; seeds as decimal strings.
const num = (v) => (['NaN', 'Infinity', '-Infinity'].includes(v) ? Number(v) : v);
const array = (a) => a && { shape: a.shape, data: a.dtype ? a.data : Float64Array.from(a.data, num) };
const seed = (s) => (typeof s === 'string' && /^-?[0-9]+$/.test(s) ? BigInt(s) : s);
const call = (c) => [c.variant, array(c.x), array(c.weight), array(c.bias), {
  tau: num(c.tau), threshold: num(c.threshold), reset_scale: num(c.reset_scale),
  surrogate_alpha: num(c.surrogate_alpha), reset: c.reset, seed: seed(c.seed), validate: c.validate,
}];
const results = (r) => ({ spikes: r.spikes, membrane: r.membrane, reset: r.reset });

function online(c) {
  const [variant, x, weight, bias, options] = call(c);
  const [T, ...shape] = x.shape;
  const n = x.data.length / T;
  let state = initState(variant, shape, { T: weight ? weight.shape[0] : null });
  const outs = [];
  for (let t = 0; t < T; t++) {
    let out;
    [state, out] = step(state, { shape, data: x.data.subarray(t * n, (t + 1) * n) }, weight, bias, options);
    outs.push(out);
  }
  const stack = (k) => outs[0][k] && { shape: x.shape, data: outs.flatMap((o) => Array.from(o[k].data)) };
  return { spikes: stack('spikes'), membrane: stack('membrane'), reset: stack('reset') };
}

const OPS = {
  hello: () => ({ name: 'js', protocol: 1 }),
  devices: () => ({ devices: ['cpu'] }),
  dtypes: () => ({ dtypes: ['float64'] }),
  forward: (q) => results(forward(...call(q.case))),
  vjp: (q) => { const [v, x, w, b, o] = call(q.case); return vjp(v, x, array(q.grad_spikes), w, b, o); },
  online: (q) => online(q.case),
  threefry2x32: (q) => {
    const words = q.key0.map((_, i) => threefry2x32(q.key0[i], q.key1[i], q.counter0[i], q.counter1[i]));
    return { out0: words.map((w) => w[0]), out1: words.map((w) => w[1]) };
  },
  uniforms: (q) => ({ uniform: uniforms(BigInt(q.seed), q.shape) }),
};

const encode = (k, v) => (ArrayBuffer.isView(v) ? Array.from(v) : typeof v === 'number' && !Number.isFinite(v) ? String(v) : v);
for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  let reply;
  try {
    const request = JSON.parse(line);
    if (!OPS[request.op]) throw new Error(`unknown op ${JSON.stringify(request.op)}`);
    reply = OPS[request.op](request);
  } catch (e) {
    const { kind = 'failure', argument = null } = e instanceof PSUError ? e : {};
    reply = { error: { kind, argument, message: kind === 'failure' ? String(e.stack) : e.message } };
  }
  process.stdout.write(`${JSON.stringify(reply, encode)}\n`);
}
