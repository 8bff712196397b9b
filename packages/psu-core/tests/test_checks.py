import math

import pytest

from psu_core.checks import check_finite, validate_call

GOOD = dict(
    x_shape=(4, 3),
    x_dtype="float32",
    x_is_floating=True,
    tau=2.0,
    threshold=1.0,
    reset_scale=None,
    surrogate_alpha=2.0,
    weight_shape=None,
    bias_shape=None,
    reset="expected",
    seed=None,
)


def call(variant="psu", **changes):
    return validate_call(variant, **{**GOOD, **changes})


def test_good_calls_return_the_checked_params():
    p = call()
    assert (p.T, p.neuron_shape, p.n, p.decay, p.gamma, p.tied, p.sampled, p.key) == (
        4,
        (3,),
        3,
        0.5,
        1.0,
        True,
        False,
        (0, 0),
    )
    p = call("rpsu", weight_shape=(4, 4), bias_shape=(4,), reset="sampled", seed=2**64 - 1, threshold=0.5)
    assert p.T == 4 and p.sampled and p.key == (0xFFFFFFFF, 0xFFFFFFFF) and p.gamma == 0.5
    p = call(reset_scale=0.0, tau=1.0001, seed=5)
    assert p.gamma == 0.0 and not p.tied and p.seed is None  # a seed is ignored in expected mode
    assert call(x_shape=(4,)).neuron_shape == () and call(x_shape=(4,)).n == 1


def test_validate_step():
    from psu_core.checks import validate_step

    good = dict(t=0, horizon=3, neuron_shape=(2,), x_shape=(2,), x_dtype="float32", x_is_floating=True,
                tau=2.0, threshold=1.0, reset_scale=None, surrogate_alpha=2.0, weight_shape=(3, 3), bias_shape=(3,))  # fmt: skip
    assert validate_step("ipsu", **good).T == 3
    with pytest.raises(ValueError, match="x_t must have shape \\[2\\]"):
        validate_step("ipsu", **{**good, "x_shape": (1, 2)})
    with pytest.raises(TypeError, match="x_t must have a floating dtype"):
        validate_step("ipsu", **{**good, "x_is_floating": False, "x_dtype": "int32"})
    with pytest.raises(ValueError, match="step 3 is past the end"):
        validate_step("ipsu", **{**good, "t": 3})
    with pytest.raises(ValueError, match="weight must have shape"):
        validate_step("ipsu", **{**good, "weight_shape": (2, 2)})
    assert (
        validate_step("psu", **{**good, "horizon": None, "t": 10**6, "weight_shape": None, "bias_shape": None}).T == 1
    )


BAD = [
    ({"x_is_floating": False, "x_dtype": "int64"}, TypeError, "x"),
    ({"x_shape": ()}, ValueError, "x"),
    ({"x_shape": (0, 3)}, ValueError, "x"),
    ({"tau": 1.0}, ValueError, "tau"),
    ({"tau": 0.5}, ValueError, "tau"),
    ({"tau": math.nan}, ValueError, "tau"),
    ({"tau": math.inf}, ValueError, "tau"),
    ({"tau": "2"}, ValueError, "tau"),
    ({"threshold": 0.0}, ValueError, "threshold"),
    ({"threshold": -1.0}, ValueError, "threshold"),
    ({"threshold": math.inf}, ValueError, "threshold"),
    ({"surrogate_alpha": 0.0}, ValueError, "surrogate_alpha"),
    ({"surrogate_alpha": math.nan}, ValueError, "surrogate_alpha"),
    ({"reset_scale": -0.5}, ValueError, "reset_scale"),
    ({"reset_scale": math.nan}, ValueError, "reset_scale"),
    ({"weight_shape": (4, 4)}, ValueError, "weight"),
    ({"bias_shape": (4,)}, ValueError, "bias"),
    ({"reset": "bernoulli"}, ValueError, "reset"),
    ({"reset": "sampled"}, ValueError, "seed"),
    ({"reset": "sampled", "seed": -1}, ValueError, "seed"),
    ({"reset": "sampled", "seed": 2**64}, ValueError, "seed"),
    ({"reset": "sampled", "seed": 1.0}, ValueError, "seed"),
]


@pytest.mark.parametrize("changes,exc,name", BAD)
def test_bad_input_names_the_argument(changes, exc, name):
    with pytest.raises(exc) as info:
        call(**changes)
    assert str(info.value).startswith(name + " "), str(info.value)
    assert "got" in str(info.value)


@pytest.mark.parametrize(
    "variant,changes,name",
    [
        ("ipsu", {"bias_shape": (4,)}, "weight"),
        ("rpsu", {"weight_shape": (4, 4)}, "bias"),
        ("rpsu", {"weight_shape": (3, 3), "bias_shape": (4,)}, "weight"),
        ("ipsu", {"weight_shape": (4, 4), "bias_shape": (4, 1)}, "bias"),
        ("ipsu", {"weight_shape": (4, 4), "bias_shape": (4,), "reset": "sampled", "seed": 1}, "reset"),
        ("lif", {}, "variant"),
    ],
)
def test_learned_parameters_and_variant(variant, changes, name):
    with pytest.raises(ValueError) as info:
        call(variant, **changes)
    assert str(info.value).startswith(name + " ")


def test_seed_ignored_in_expected_mode():
    assert call(seed="anything").seed is None


def test_check_finite():
    check_finite(True)
    with pytest.raises(ValueError, match="^x must contain only finite"):
        check_finite(False)
