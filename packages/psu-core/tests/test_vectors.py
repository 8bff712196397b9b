import collections
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from psu_core import reference
from psu_core.tolerances import DRAW_MARGIN, MEMBRANE_MARGIN
from psu_core.vectors import DATA_DIR, load_bad_input, load_cases, load_rng
from psu_core.vectors.__main__ import main, verify
from psu_core.vectors.generate import dumps

CASES = load_cases()


def test_verify_passes_on_the_shipped_vectors():
    assert main(["verify"]) == 0


def partial_copy(tmp_path, name):
    """A vector directory holding only ``name`` (and the schema), with a manifest to match:
    schema validation of the full set takes many seconds, one small file a fraction of that."""
    d = tmp_path / "data"
    d.mkdir()
    manifest = json.loads((DATA_DIR / "manifest.json").read_text())
    manifest["files"] = {k: v for k, v in manifest["files"].items() if k in (name, "schema.json")}
    (d / "manifest.json").write_text(json.dumps(manifest))
    for f in (name, "schema.json"):
        shutil.copy(DATA_DIR / f, d / f)
    assert verify(d) == []
    return d


def test_generation_reproduces_the_files_byte_for_byte():
    assert main(["generate", "--check"]) == 0


def test_verify_catches_tampering(tmp_path):
    d = partial_copy(tmp_path, "psu-expected.json")
    doc = json.loads((d / "psu-expected.json").read_text())
    doc["cases"][0]["expected"]["membrane"]["data"][0] += 1e-9
    (d / "psu-expected.json").write_text(json.dumps(doc))
    problems = verify(d)
    assert any("psu-expected.json: sha256" in p for p in problems)
    assert main(["verify", "--dir", str(d)]) == 1


def test_verify_catches_a_schema_violation(tmp_path):
    d = partial_copy(tmp_path, "psu-sampled.json")
    doc = json.loads((d / "psu-sampled.json").read_text())
    doc["cases"][0]["variant"] = "lif"
    doc["cases"][1]["expected"]["reset"]["data"][0] = 0.5
    (d / "psu-sampled.json").write_text(json.dumps(doc))
    problems = verify(d)
    assert any("psu-sampled.json: 2 schema error(s)" in p for p in problems), problems


def test_verify_catches_a_wrong_format_version_and_a_stray_file(tmp_path):
    d = partial_copy(tmp_path, "rng.json")
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["format_version"] = 2
    (d / "manifest.json").write_text(json.dumps(manifest))
    (d / "extra.json").write_text("{}")
    problems = verify(d)
    assert any("format_version 2" in p for p in problems)
    assert any("extra.json: present but not in the manifest" in p for p in problems)


def test_check_mode_catches_a_changed_file(tmp_path):
    d = tmp_path / "data"
    shutil.copytree(DATA_DIR, d)
    (d / "rng.json").write_text((d / "rng.json").read_text().replace("1", "2", 1))
    assert main(["generate", "--out", str(d), "--check"]) == 1


def test_coverage():
    by = collections.Counter((c.variant, c.reset) for c in CASES)
    assert set(by) == {
        ("psu", "expected"),
        ("psu", "sampled"),
        ("ipsu", "expected"),
        ("rpsu", "expected"),
        ("rpsu", "sampled"),
    }
    for variant in ("psu", "ipsu", "rpsu"):
        cs = [c for c in CASES if c.variant == variant]
        assert {c.T for c in cs} == {1, 2, 3, 4, 8, 16, 64, 256}
        assert {(c.threshold, c.preset) for c in cs} == {
            (t, p) for t in (1.0, 0.5) for p in ("tied", "free", "reference")
        }
        assert {c.tau for c in cs} == {2.0, 4.0}
        assert {c.x.ndim - 1 for c in cs} == {1, 2, 3, 4}
    seeds = {c.seed for c in CASES if c.reset == "sampled"}
    assert len(seeds) >= 4 and max(seeds) >= 2**32  # the high key word is exercised
    assert len({c.id for c in CASES}) == len(CASES)


def test_presets_mean_what_the_spec_says():
    for c in CASES:
        if c.preset == "tied":
            assert c.reset_scale is None
        elif c.preset == "reference":
            assert c.reset_scale == (None if c.variant == "psu" else 1.0)  # SPEC §7: PSU tied, others 1
        else:
            assert c.reset_scale is not None and c.reset_scale != c.threshold


def test_margins_hold():
    for c in CASES:
        assert np.abs(c.expected["membrane"] - c.threshold).min() >= MEMBRANE_MARGIN, c.id
        if c.reset == "sampled":
            assert np.abs(c.expected["uniform"] - c.expected["reset_probability"]).min() >= DRAW_MARGIN, c.id


def test_weights_have_an_upper_triangle_to_ignore():
    for c in CASES:
        if c.weight is not None and c.T > 1:
            assert np.abs(np.triu(c.weight, 1)).sum() > 0, c.id
            assert np.all(np.triu(c.gradients["weight"], 1) == 0), c.id


@pytest.mark.parametrize("case", [c for c in CASES if c.T <= 16], ids=lambda c: c.id)
def test_dense_form_reproduces_the_vectors(case):
    f = reference.forward_dense(case.variant, case.x, case.weight, case.bias, **case.params())
    assert np.array_equal(f.spikes, case.expected["spikes"])
    assert np.abs(f.membrane - case.expected["membrane"]).max() < 1e-12
    g = reference.vjp_dense(case.variant, case.x, case.grad_spikes, case.weight, case.bias, **case.params())
    assert np.abs(g.x - case.gradients["x"]).max() < 1e-11


def test_spike_rates_are_neither_silent_nor_saturated_overall():
    rates = [c.expected["spikes"].mean() for c in CASES if c.T >= 8]
    assert 0.2 < np.mean(rates) < 0.8
    assert min(rates) > 0.0 and max(rates) < 1.0


def test_rng_file():
    r = load_rng()
    assert len(r["known_answers"]) == 3 and len(r["words"]) >= 32 and len(r["streams"]) >= 4
    assert r["known_answers"][0]["output"] == [0x6B200159, 0x99BA4EFE]


def test_bad_input_table():
    doc = load_bad_input()
    assert set(doc["bases"]) == {"psu", "ipsu", "rpsu"}
    assert {r["argument"] for r in doc["rejected"]} == {
        "tau", "threshold", "surrogate_alpha", "reset_scale", "weight", "bias", "x", "reset", "seed",
    }  # fmt: skip
    assert [r["id"] for r in doc["rejected"] if r["kind"] == "invalid_type"] == ["psu-x-integer"]
    ids = [e["id"] for e in doc["rejected"] + doc["accepted"]]
    assert len(ids) == len(set(ids))


# SPEC §10's number format, written by another language: the JavaScript port re-writes every file
# from its parsed values and must give the same bytes.
JSONFORMAT = Path(__file__).resolve().parents[3] / "ports" / "js" / "jsonformat.mjs"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(
    NODE is None or not JSONFORMAT.exists(),
    reason=f"needs Node.js on PATH and {JSONFORMAT} (the repository's JavaScript port)",
)


def run_jsonformat(directory):
    return subprocess.run([NODE, str(JSONFORMAT), str(directory)], capture_output=True, text=True, timeout=120)


@needs_node
def test_javascript_writes_every_vector_file_byte_for_byte():
    result = run_jsonformat(DATA_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("same ") == len(json.loads((DATA_DIR / "manifest.json").read_text())["files"]) + 1


@needs_node
def test_javascript_formats_floats_as_the_writer_does(tmp_path):
    """Shortest round-trip digits and the §10 layout on floats of every exponent (bit patterns
    drawn at random), the boundaries of the positional range, subnormals and extremes."""
    bits = np.random.default_rng(10).integers(0, 2**64, size=20000, dtype=np.uint64)
    values = bits.view(np.float64)
    values = values[np.isfinite(values)].tolist()
    values += [1e16, 9999999999999998.0, 1e-4, 9.999999999999999e-05, 1e-5, 0.1, 1.0, -0.0, 0.0, 5e-324]
    values += [2.0**53, 1e21, 1e22, 1.7976931348623157e308, 2.2250738585072014e-308, 123456789.125]
    (tmp_path / "floats.json").write_bytes(dumps({"values": values}))
    result = run_jsonformat(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_node
def test_javascript_formatting_can_fail(tmp_path):
    """The check is real: a file spelled differently (JavaScript's own 1e-5) is reported."""
    (tmp_path / "floats.json").write_bytes(b'{"values":[1e-5]}\n')
    result = run_jsonformat(tmp_path)
    assert result.returncode == 1 and "DIFFERS floats.json" in result.stdout
