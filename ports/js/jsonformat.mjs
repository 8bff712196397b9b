// The bytes of the golden-vector files (SPEC §10) from JavaScript: sorted keys, compact separators
// (manifest.json and schema.json: two-space indent), ASCII with \uXXXX escapes, floats in the
// number format of §10, integers as integers, a final newline. Run as
//   node ports/js/jsonformat.mjs packages/psu-core/src/psu_core/vectors/data
// it parses every file and writes it again: exit 0 when every byte comes back the same.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A float64 in the §10 format: the shortest round-trip digits (those of Number.prototype.toString)
 * d1.d2...dn x 10^E, positional when -4 <= E < 16 with a digit on each side of the point
 * (1.0, 0.0001, 1234.5), else d1[.d2...dn]e±XX with at least two exponent digits (1e-05, 1.5e+16).
 */
export function formatFloat(v) {
  if (!Number.isFinite(v)) throw new RangeError(`${v} has no JSON number`);
  if (v === 0) return Object.is(v, -0) ? '-0.0' : '0.0';
  const [mantissa, exponent = '0'] = String(Math.abs(v)).split('e');
  const [whole, fraction = ''] = mantissa.split('.');
  const all = whole + fraction;
  const lead = all.length - all.replace(/^0+/, '').length;
  const digits = all.slice(lead).replace(/0+$/, '');
  const E = whole.length + Number(exponent) - lead - 1;
  const sign = v < 0 ? '-' : '';
  if (E < -4 || E >= 16) {
    const e = `${E < 0 ? '-' : '+'}${String(Math.abs(E)).padStart(2, '0')}`;
    return `${sign}${digits[0]}${digits.length > 1 ? `.${digits.slice(1)}` : ''}e${e}`;
  }
  if (E < 0) return `${sign}0.${'0'.repeat(-E - 1)}${digits}`;
  return `${sign}${digits.slice(0, E + 1).padEnd(E + 1, '0')}.${digits.slice(E + 1) || '0'}`;
}

// Which numbers are integers (the schema's integer fields): these keys (`at`: a pin's position),
// the data of spike and draw arrays and of arrays with a dtype, and every number of manifest.json
// and schema.json.
const INTEGER_KEYS = new Set(['format_version', 'seed', 'shape', 'key', 'counter', 'output', 'at', 'step']);
const string = (s) => JSON.stringify(s).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** The §10 text of a parsed document (indent: null for compact, 2 for manifest and schema). */
export function dumps(doc, { indent = null, integers = false } = {}) {
  const write = (v, integer, depth, key) => {
    if (v === null || typeof v === 'boolean') return String(v);
    if (typeof v === 'string') return string(v);
    if (typeof v === 'number') return integer ? String(v) : formatFloat(v);
    const open = indent === null ? '' : `\n${' '.repeat(indent * (depth + 1))}`;
    const close = indent === null ? '' : `\n${' '.repeat(indent * depth)}`;
    if (Array.isArray(v)) {
      return v.length ? `[${open}${v.map((x) => write(x, integer, depth + 1)).join(`,${open}`)}${close}]` : '[]';
    }
    const keys = Object.keys(v).sort();
    const isInteger = (k) => integers || INTEGER_KEYS.has(k) || (k === 'data' && (key === 'spikes' || key === 'reset' || 'dtype' in v));
    const items = keys.map((k) => `${string(k)}:${indent === null ? '' : ' '}${write(v[k], isInteger(k), depth + 1, k)}`);
    return keys.length ? `{${open}${items.join(`,${open}`)}${close}}` : '{}';
  };
  return `${write(doc, integers, 0)}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = process.argv[2];
  let bad = 0;
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    const text = readFileSync(join(dir, name), 'utf8');
    const indented = name === 'manifest.json' || name === 'schema.json';
    const again = dumps(JSON.parse(text), indented ? { indent: 2, integers: true } : {});
    let at = 0;
    while (at < text.length && text[at] === again[at]) at++;
    const same = again === text;
    bad += same ? 0 : 1;
    console.log(`${same ? 'same' : 'DIFFERS'} ${name}${same ? '' : ` at character ${at}: ${JSON.stringify(text.slice(at - 20, at + 20))} vs ${JSON.stringify(again.slice(at - 20, at + 20))}`}`);
  }
  process.exit(bad ? 1 : 0);
}
