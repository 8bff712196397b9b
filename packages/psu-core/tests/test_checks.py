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


def test_good_calls_return_T():
    assert call() == 4
    assert call("rpsu", weight_shape=(4, 4), bias_shape=(4,), reset="sampled", seed=2**64 - 1) == 4
    assert call(reset_scale=0.0, tau=1.0001) == 4


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
    assert call(seed="anything") == 4


def test_check_finite():
    check_finite(True)
    with pytest.raises(ValueError, match="^x must contain only finite"):
        check_finite(False)
