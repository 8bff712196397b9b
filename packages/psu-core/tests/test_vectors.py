import collections
import json
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from psu_core import reference, rng
from psu_core.tolerances import DRAW_MARGIN, MEMBRANE_MARGIN, error_ratio, for_dtype
from psu_core.vectors import (
    CASE_FILES,
    DATA_DIR,
    load_bad_input,
    load_cases,
    load_nonfinite,
    load_rng,
    load_statistics,
)
from psu_core.vectors.__main__ import main, verify
from psu_core.vectors.generate import DRAW_PIN, dumps, first_seed_with_half_draw

CASES = load_cases()
PINNED = [c for c in CASES if c.pins]
#: The robustness cases (issue 11, after the pins): non-dyadic tau over long T, saturated P.
DECAY = [c for c in CASES if c.id.endswith("-decay")]
SATURATED = [c for c in CASES if c.id.endswith("-saturated")]


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
        assert {c.T for c in cs} == {1, 2, 3, 4, 8, 16, 64, 256} | (
            {512, 1024, 4096} if variant == "psu" else {128, 512}
        )
        assert {(c.threshold, c.preset) for c in cs} == {
            (t, p) for t in (1.0, 0.5) for p in ("tied", "free", "reference")
        }
        # 3, 1.0001, 1.7, 37: a = 1/tau is not a power of two (SPEC §9)
        assert {c.tau for c in cs} == {2.0, 3.0, 4.0, 1.0001, 1.7, 37.0}
        assert {c.x.ndim - 1 for c in cs} == {0, 1, 2, 3, 4}  # 0: a rank-1 x, [T]
    seeds = {c.seed for c in CASES if c.reset == "sampled"}
    assert len(seeds) >= 4 and min(seeds) == 0 and max(seeds) == 2**64 - 1  # the high key word is exercised
    assert {s for s in seeds if s >= 2**53} >= {2**53, 2**64 - 1}  # beyond JSON's exact integers
    assert len({c.id for c in CASES}) == len(CASES)
    for variant, reset in by:
        pinned = [c for c in PINNED if (c.variant, c.reset) == (variant, reset)]
        assert pinned and all(c.pin_mask("membrane").any() for c in pinned), (variant, reset)
        assert any(c.pin_mask("draw").any() for c in pinned) == (reset == "sampled"), (variant, reset)
    # The stable sigmoid of SPEC §1 at |z| = 768: P exactly 1 and exactly 0 (PSU's H, RPSU's logit).
    for variant in ("psu", "rpsu"):
        ps = [c.expected["reset_probability"] for c in PINNED if c.variant == variant]
        assert any((p == 1.0).any() for p in ps) and any((p == 0.0).any() for p in ps), variant


def test_seeds_are_exact_decimal_strings_in_the_files():
    doc = json.loads((DATA_DIR / "psu-sampled.json").read_text())
    assert {type(c["seed"]) for c in doc["cases"]} == {str}
    assert str(2**64 - 1) in {c["seed"] for c in doc["cases"]}
    assert {type(s["seed"]) for s in json.loads((DATA_DIR / "rng.json").read_text())["streams"]} == {str}
    assert {2**53, 2**64 - 1} <= {s["seed"] for s in load_rng()["streams"]}  # integers once loaded


def test_presets_mean_what_the_spec_says():
    for c in CASES:
        if c.preset == "tied":
            assert c.reset_scale is None
        elif c.preset == "reference":
            assert c.reset_scale == (None if c.variant == "psu" else 1.0)  # SPEC §7: PSU tied, others 1
        else:
            assert c.reset_scale is not None and c.reset_scale != c.threshold


def test_margins_hold_except_at_the_pins():
    for c in CASES:
        free = ~c.pin_mask("membrane")
        assert np.abs(c.expected["membrane"] - c.threshold)[free].min() >= MEMBRANE_MARGIN, c.id
        if c.reset == "sampled":
            free = ~c.pin_mask("draw")
            assert np.abs(c.expected["uniform"] - c.expected["reset_probability"])[free].min() >= DRAW_MARGIN, c.id


def test_pins_are_exactly_on_their_thresholds_in_the_vectors():
    for c in PINNED:
        on = c.pin_mask("membrane")
        assert (c.expected["membrane"][on] == c.threshold).all() and (c.expected["spikes"][on] == 0).all(), c.id
        on = c.pin_mask("draw")
        if on.any():
            assert (c.expected["uniform"][on] == 0.5).all() and (c.expected["reset_probability"][on] == 0.5).all()
            assert (c.expected["reset"][on] == 0).all(), c.id


def test_the_draw_pins_seeds_are_the_first_of_their_search():
    """SPEC §10: counting up from 2**53 (PSU) and down from 2**64 - 1 (RPSU), the first seed whose
    uniform at the draw pin's position is exactly 1/2."""
    seeds = {c.variant: c.seed for c in PINNED if c.reset == "sampled"}
    assert seeds == {"psu": first_seed_with_half_draw(2**53, 1, *DRAW_PIN),
                     "rpsu": first_seed_with_half_draw(2**64 - 1, -1, *DRAW_PIN)}  # fmt: skip
    for seed in seeds.values():
        assert rng.uniforms(seed, (DRAW_PIN[0] + 1, DRAW_PIN[1] + 1))[DRAW_PIN] == 0.5


# ----------------------------------------------------------------------------- pins in every dtype


def _dtype(name: str):
    if name == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes", reason="bfloat16 arithmetic in NumPy comes from ml_dtypes")
        return ml_dtypes.bfloat16
    return np.dtype(name)


def recurrence_in(case, dtype, *, reverse=False, fire_at_threshold=False, reset_at_probability=False, decay_once=False):
    """SPEC §3 with every operation rounded to ``dtype`` (NumPy's float16 and ml_dtypes' bfloat16
    round each operation), written here apart from the reference. The mix ``sum_j W[t, j] x_j`` is
    summed in ascending ``j``, or descending with ``reverse``. ``fire_at_threshold`` (``V >= theta``)
    and ``reset_at_probability`` (``u <= P``) are the two wrong ports the pins exist to catch.
    The decay multiplies by ``a`` rounded to ``dtype`` (the drift of SPEC §9), or with
    ``decay_once`` rounds the exact product ``y * (1/tau)`` once (what ``fma(y, a_hi, y a_lo)`` or
    a float64 state gives). Returns V, S, P, R as float64 ``[T, N]`` (P, R: None where undefined)."""
    T = case.T
    cast = lambda v: np.asarray(v, dtype=np.float64).astype(dtype)  # noqa: E731
    x = cast(case.x.reshape(T, -1))
    assert np.array_equal(x.astype(np.float64), case.x.reshape(T, -1)), "the inputs are exact in every dtype"
    w, b = (None, None) if case.weight is None else (cast(case.weight), cast(case.bias))
    a, theta = cast(1.0 / case.tau), cast(case.threshold)
    gamma = cast(case.threshold if case.reset_scale is None else case.reset_scale)
    one = cast(1.0)
    if decay_once:
        decay = lambda y: cast(np.asarray(y, dtype=np.float64) * (1.0 / case.tau))  # noqa: E731
    else:
        decay = lambda y: a * y  # noqa: E731
    u = rng.uniforms(case.seed, x.shape) if case.reset == "sampled" else None  # exact in float32 and float64
    h = r = q = cast(np.zeros(x.shape[1]))
    out = {k: [] for k in "VSPR"}
    for t in range(T):
        if t > 0:
            r = decay(r + q)
        if case.variant != "psu":
            order = range(t, -1, -1) if reverse else range(t + 1)
            mix = None
            for j in order:
                mix = w[t, j] * x[j] if mix is None else mix + w[t, j] * x[j]
            mix = mix + b[t]
        if case.variant == "ipsu":
            h, q = mix, x[t]
        else:
            h = decay(h + x[t])
            z = mix if case.variant == "rpsu" else h
            e = np.exp(-np.abs(z))
            q = p = np.where(z >= 0, one / (one + e), e / (one + e)).astype(dtype)
            out["P"].append(p)
            if u is not None:
                drawn = u[t] <= p.astype(np.float64) if reset_at_probability else u[t] < p.astype(np.float64)
                q = cast(drawn)
                out["R"].append(q)
        v = h - gamma * r
        out["V"].append(v)
        out["S"].append(v >= theta if fire_at_threshold else v > theta)
    return SimpleNamespace(**{k: np.stack(v).astype(np.float64) if v else None for k, v in out.items()})


DTYPES = ["float64", "float32", "float16", "bfloat16"]


def _flat(case, kind):
    return case.pin_mask(kind).reshape(case.T, -1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", PINNED, ids=lambda c: c.id)
def test_pins_are_exact_in_every_dtype(case, dtype):
    """Computed in float64, float32, float16 and bfloat16 (each operation rounded, the mix summed
    in either order), every membrane pin is exactly theta (spike 0) and every draw pin has
    ``u = P = 1/2`` exactly (no reset): no port's rounding moves them."""
    for reverse in (False, True):
        got = recurrence_in(case, _dtype(dtype), reverse=reverse)
        on = _flat(case, "membrane")
        assert (got.V[on] == case.threshold).all() and (got.S[on] == 0).all(), got.V[on]
        on = _flat(case, "draw")
        if on.any():
            assert (got.P[on] == 0.5).all() and (got.R[on] == 0).all(), got.P[on]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", PINNED, ids=lambda c: c.id)
def test_a_port_firing_at_the_threshold_or_resetting_at_the_probability_fails(case, dtype):
    """``V >= theta`` fires at every membrane pin; ``u <= P`` resets at every draw pin, and the
    step after then holds a membrane beyond the dtype's tolerance and a spike that differs (the
    forward pass shows it, not only the draws). The margins excuse neither, in any dtype."""
    dt, expected = _dtype(dtype), SimpleNamespace(V=case.expected["membrane"].reshape(case.T, -1),
                                                  S=case.expected["spikes"].reshape(case.T, -1))  # fmt: skip
    on = _flat(case, "membrane")
    assert (recurrence_in(case, dt, fire_at_threshold=True).S[on] != expected.S[on]).all()
    tol = for_dtype(dtype).membrane
    for t, n in zip(*np.nonzero(_flat(case, "draw")), strict=True):
        wrong = recurrence_in(case, dt, reset_at_probability=True)
        assert wrong.R[t, n] == 1
        after = (t + 1, n)
        assert wrong.S[after] != expected.S[after]
        assert abs(wrong.V[after] - expected.V[after]) > tol.atol + tol.rtol * abs(expected.V[after])


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
    """The grid's cases (the robustness cases are there for their numerics: a membrane that grows
    for 4096 steps fires throughout, one whose resets pile up never does)."""
    rates = [c.expected["spikes"].mean() for c in CASES if c.T >= 8 and c not in DECAY + SATURATED]
    assert 0.2 < np.mean(rates) < 0.8
    assert min(rates) > 0.0 and max(rates) < 1.0


# ----------------------------------------------------------------------------- robustness cases (issue 11)


def test_robustness_cases_cover_every_file():
    """SPEC §10: per file, tau 1.0001, 1.7 and 37 (T up to 4096 for PSU, 512 for IPSU/RPSU) on at
    most 3 neurons; saturated reset probabilities in PSU expected and both RPSU files."""
    for stem in CASE_FILES:
        variant, reset = stem.split("-")
        mine = [c for c in DECAY if (c.variant, c.reset) == (variant, reset)]
        assert sorted(c.tau for c in mine) == [1.0001, 1.7, 37.0], stem
        assert max(c.T for c in mine) == (4096 if variant == "psu" else 512), stem
        assert all(c.x[0].size <= 3 for c in mine), stem
    assert {(c.variant, c.reset) for c in SATURATED} == {("psu", "expected"), ("rpsu", "expected"), ("rpsu", "sampled")}
    for c in SATURATED:  # logits of magnitude 9 and more at most steps
        z = reference.forward(c.variant, c.x, c.weight, c.bias, **c.params()).logit
        assert (np.abs(z) >= 9).mean() > 0.5, c.id


@pytest.mark.parametrize("case", DECAY, ids=lambda c: c.id)
def test_a_float32_decay_rounded_once_passes_the_long_cases(case):
    """SPEC §9 (R2): a float32 recurrence whose decay rounds ``y * (1/tau)`` once per step (fma of
    a_hi and a_lo, or a float64 state) stays within the float32 membrane tolerance on every
    robustness case, with room to spare, and gives the golden spikes."""
    got = recurrence_in(case, np.float32, decay_once=True)
    want = case.expected["membrane"].reshape(case.T, -1)
    assert error_ratio(got.V, want, for_dtype("float32").membrane) < 0.75
    assert np.array_equal(got.S, case.expected["spikes"].reshape(case.T, -1))


def test_a_float32_decay_multiplying_a_rounded_a_fails_the_long_cases():
    """The drift of issue 11: multiplying by float32(1/tau) at every step compounds its rounding
    T times, beyond the float32 tolerance on the PSU cases of T = 4096 and the IPSU case of
    T = 512 with tau = 1.0001 (the vectors catch it)."""
    tol = for_dtype("float32").membrane
    ratios = {
        c.id: error_ratio(recurrence_in(c, np.float32).V, c.expected["membrane"].reshape(c.T, -1), tol)
        for c in DECAY
        if c.tau == 1.0001 and c.variant != "rpsu"
    }
    assert min(ratios.values()) > 1.4, ratios


def _float32_sigmoid_derivative(naive):
    f32 = np.float32

    def derivative(z):
        p = reference.sigmoid(z).astype(f32)
        if naive:  # P (1 - P) from a float32 P: 1 - P keeps few digits near 1
            return (p * (f32(1.0) - p)).astype(np.float64)
        return (p * reference.sigmoid(-np.asarray(z)).astype(f32)).astype(np.float64)

    return derivative


@pytest.mark.parametrize("case", [c for c in SATURATED if c.variant == "rpsu"], ids=lambda c: c.id)
def test_saturated_cases_catch_a_float32_p_times_one_minus_p(case, monkeypatch):
    """SPEC §5 (R3): with dP/dz in float32 (the rest exact), sigma(z) sigma(-z) keeps dL/dW and
    dL/db within the float32 gradient tolerance; P (1 - P) from a float32 P misses it."""
    tol = for_dtype("float32").gradient

    def worst(naive):
        monkeypatch.setattr(reference, "sigmoid_derivative", _float32_sigmoid_derivative(naive))
        g = reference.vjp(case.variant, case.x, case.grad_spikes, case.weight, case.bias, **case.params())
        return max(error_ratio(getattr(g, k), case.gradients[k], tol) for k in ("weight", "bias"))

    assert worst(naive=False) < 0.1
    assert worst(naive=True) > 2.0


def test_nonfinite_file():
    """SPEC §1/§10: NaN, +inf and -inf in x at a middle step for every variant and reset mode, NaN
    in W's row t0 (lower triangle) and in b[t0] for IPSU and RPSU; the reference reproduces the
    prefix exactly on the replaced inputs, in the recurrence and the dense form, and the listed
    positions come out non-finite."""
    cases = load_nonfinite()
    kinds = collections.Counter(
        (c.case["variant"], c.case["reset"], r["input"], r["value"]) for c in cases for r in c.replace
    )
    for variant, reset in {(c.variant, c.reset) for c in CASES}:
        assert {kinds[(variant, reset, "x", v)] for v in ("NaN", "Infinity", "-Infinity")} == {1}
        learned = {kinds[(variant, reset, k, "NaN")] for k in ("weight", "bias")}
        assert learned == ({0} if variant == "psu" else {1}), (variant, reset)
    assert len({c.id for c in cases}) == len(cases)
    for c in cases:
        assert all(v is None or np.isfinite(v).all() for v in c.finite.values()), c.id
        for r in c.replace:
            assert r["at"][0] == c.step and (r["input"] != "weight" or r["at"][1] <= c.step), c.id
        case = c.fresh()
        variant, x, w, b = case.pop("variant"), case.pop("x"), case.pop("weight"), case.pop("bias")
        for form in (reference.forward, reference.forward_dense):
            got = form(variant, x, w, b, **case)
            assert np.isin(got.spikes, (0.0, 1.0)).all(), c.id
            for key, want in c.expected.items():
                assert (want is None) == (getattr(got, key) is None), (c.id, key)
                if want is not None:  # the recurrence bit for bit, the dense form within float64 rounding
                    prefix = getattr(got, key)[: c.step]
                    assert want.shape[0] == c.step, (c.id, key)
                    if form is reference.forward or key in ("spikes", "reset", "uniform"):
                        assert np.array_equal(prefix, want), (c.id, key)
                    else:
                        np.testing.assert_allclose(prefix, want, rtol=1e-12, atol=1e-12, err_msg=c.id)
            for output, index in c.nonfinite:
                assert not np.isfinite(getattr(got, output)[index]), (c.id, output, index)
        assert np.abs(c.expected["membrane"] - case["threshold"]).min() >= MEMBRANE_MARGIN, c.id


def test_rng_file():
    r = load_rng()
    assert len(r["known_answers"]) == 3 and len(r["words"]) >= 32 and len(r["streams"]) >= 4
    assert r["known_answers"][0]["output"] == [0x6B200159, 0x99BA4EFE]
    for s in r["streams"]:
        u = np.asarray(s["uniform"]["data"]).reshape(s["uniform"]["shape"])
        assert np.array_equal(u, rng.uniforms(s["seed"], u.shape)), s["seed"]


def test_statistics_file():
    """The sampled group's large cases, as data: the reference's mean(P) and binomial sd."""
    doc = load_statistics()
    assert doc["frequency_sigmas"] == 5.0 and doc["uniforms"]["shape"] == [8, 4096]
    s0, s1 = doc["uniforms"]["seeds"]
    assert s1 == s0 + 1 and 0.9 <= doc["uniforms"]["differ_fraction"] < 1
    assert [c.case["variant"] for c in doc["cases"]] == ["psu", "rpsu"]
    for c in doc["cases"]:
        case = dict(c.case)
        assert case["x"].shape == (8, 4096) and c.other_seed == case["seed"] + 1
        p = reference.forward(case.pop("variant"), case.pop("x"), case.pop("weight"), case.pop("bias"), **case)
        assert p.reset_probability.mean() == pytest.approx(c.reset_probability_mean, rel=1e-12)
        assert np.sqrt(np.sum(p.reset_probability * (1 - p.reset_probability))) / p.reset_probability.size == (
            pytest.approx(c.reset_sd, rel=1e-12)
        )


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
