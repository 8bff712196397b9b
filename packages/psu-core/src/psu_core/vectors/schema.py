"""The JSON Schema (draft 2020-12) of the golden-vector files, written out as ``schema.json``."""

from __future__ import annotations

from typing import Any

ARRAY = {
    "type": "object",
    "required": ["shape", "data"],
    "additionalProperties": False,
    "properties": {
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "data": {"type": "array", "items": {"type": "number"}},
    },
}
SPIKE_ARRAY = {
    "type": "object",
    "required": ["shape", "data"],
    "additionalProperties": False,
    "properties": {
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "data": {"type": "array", "items": {"enum": [0, 1]}},
    },
}
NULLABLE_ARRAY = {"oneOf": [{"$ref": "#/$defs/array"}, {"type": "null"}]}
NULLABLE_SPIKES = {"oneOf": [{"$ref": "#/$defs/spike_array"}, {"type": "null"}]}
WORD = {"type": "integer", "minimum": 0, "maximum": 0xFFFFFFFF}
# A seed in [0, 2**64) as a decimal string: exact in every JSON reader, which a number >= 2**53 is not.
SEED = {"type": "string", "pattern": "^(0|[1-9][0-9]{0,19})$"}
NULLABLE_SEED = {"oneOf": [SEED, {"type": "null"}]}
PAIR = {"type": "array", "items": WORD, "minItems": 2, "maxItems": 2}


def _object(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": sorted(props), "additionalProperties": False, "properties": props}


CASE = _object(
    {
        "id": {"type": "string"},
        "variant": {"enum": ["psu", "ipsu", "rpsu"]},
        "reset": {"enum": ["expected", "sampled"]},
        "tau": {"type": "number", "exclusiveMinimum": 1},
        "threshold": {"type": "number", "exclusiveMinimum": 0},
        "reset_scale": {"oneOf": [{"type": "number", "minimum": 0}, {"type": "null"}]},
        "surrogate_alpha": {"type": "number", "exclusiveMinimum": 0},
        "preset": {"enum": ["tied", "free", "reference"]},
        "seed": NULLABLE_SEED,
        "pins": {
            "type": "array",
            "items": _object(
                {
                    "kind": {"enum": ["membrane", "draw"]},
                    "at": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1},
                }
            ),
        },
        "inputs": _object(
            {
                "x": {"$ref": "#/$defs/array"},
                "weight": NULLABLE_ARRAY,
                "bias": NULLABLE_ARRAY,
                "grad_spikes": {"$ref": "#/$defs/array"},
            }
        ),
        "expected": _object(
            {
                "spikes": {"$ref": "#/$defs/spike_array"},
                "membrane": {"$ref": "#/$defs/array"},
                "reset_probability": NULLABLE_ARRAY,
                "reset": NULLABLE_SPIKES,
                "uniform": NULLABLE_ARRAY,
            }
        ),
        "gradients": _object(
            {
                "x": {"$ref": "#/$defs/array"},
                "weight": NULLABLE_ARRAY,
                "bias": NULLABLE_ARRAY,
                "threshold": {"type": "number"},
                "surrogate_alpha": {"type": "number"},
            }
        ),
    }
)

CASE_FILE = _object(
    {
        "format_version": {"const": 1},
        "variant": {"enum": ["psu", "ipsu", "rpsu"]},
        "reset": {"enum": ["expected", "sampled"]},
        "cases": {"type": "array", "items": {"$ref": "#/$defs/case"}},
    }
)

RNG_FILE = _object(
    {
        "format_version": {"const": 1},
        "known_answers": {"type": "array", "items": _object({"key": PAIR, "counter": PAIR, "output": PAIR})},
        "words": {"type": "array", "items": _object({"key": PAIR, "counter": PAIR, "output": PAIR})},
        "streams": {
            "type": "array",
            "items": _object(
                {
                    "seed": SEED,
                    "uniform": {"$ref": "#/$defs/array"},
                }
            ),
        },
    }
)

STATISTICS_FILE = _object(
    {
        "format_version": {"const": 1},
        "frequency_sigmas": {"type": "number", "exclusiveMinimum": 0},
        "uniforms": _object(
            {
                "shape": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1},
                "seeds": {"type": "array", "items": SEED, "minItems": 2, "maxItems": 2},
                "differ_fraction": {"type": "number", "minimum": 0, "maximum": 1},
            }
        ),
        "cases": {
            "type": "array",
            "items": _object(
                {
                    "id": {"type": "string"},
                    "variant": {"enum": ["psu", "rpsu"]},
                    "reset": {"const": "sampled"},
                    "tau": {"type": "number", "exclusiveMinimum": 1},
                    "threshold": {"type": "number", "exclusiveMinimum": 0},
                    "reset_scale": {"oneOf": [{"type": "number", "minimum": 0}, {"type": "null"}]},
                    "surrogate_alpha": {"type": "number", "exclusiveMinimum": 0},
                    "seed": SEED,
                    "other_seed": SEED,
                    "inputs": _object(
                        {"x": {"$ref": "#/$defs/array"}, "weight": NULLABLE_ARRAY, "bias": NULLABLE_ARRAY}
                    ),
                    "expected": _object(
                        {"reset_probability_mean": {"type": "number"}, "reset_sd": {"type": "number", "minimum": 0}}
                    ),
                }
            ),
        },
    }
)

# bad_input.json: calls in the encoding of psu_core.vectors.calls (non-finite floats as strings,
# seeds as decimal strings, a non-floating array with its dtype).
NON_FINITE = {"enum": ["NaN", "Infinity", "-Infinity"]}
CALL_FLOAT = {"anyOf": [{"type": "number"}, NON_FINITE]}
CALL_ARRAY = {
    "type": "object",
    "required": ["shape", "data"],
    "additionalProperties": False,
    "properties": {
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "data": {"type": "array", "items": CALL_FLOAT},
        "dtype": {"type": "string"},
    },
}
NULLABLE_CALL_ARRAY = {"anyOf": [{"$ref": "#/$defs/call_array"}, {"type": "null"}]}
CALL_PROPERTIES = {
    "variant": {"type": "string"},
    "x": {"$ref": "#/$defs/call_array"},
    "weight": NULLABLE_CALL_ARRAY,
    "bias": NULLABLE_CALL_ARRAY,
    "tau": CALL_FLOAT,
    "threshold": CALL_FLOAT,
    "reset_scale": {"anyOf": [{"type": "number"}, NON_FINITE, {"type": "null"}]},
    "surrogate_alpha": CALL_FLOAT,
    "reset": {"type": "string"},
    "seed": {"anyOf": [{"type": "string", "pattern": "^-?[0-9]+$"}, {"type": "null"}]},
    "validate": {"type": "boolean"},
}
#: A whole call (every key); the changes of a bad input are any subset of it.
CALL = _object(CALL_PROPERTIES)
CHANGES = {"type": "object", "additionalProperties": False, "properties": CALL_PROPERTIES}
VARIANT = {"enum": ["psu", "ipsu", "rpsu"]}
BAD_INPUT_FILE = _object(
    {
        "format_version": {"const": 1},
        "bases": _object({v: {"$ref": "#/$defs/call"} for v in ("psu", "ipsu", "rpsu")}),
        "rejected": {
            "type": "array",
            "items": _object(
                {
                    "id": {"type": "string"},
                    "variant": VARIANT,
                    "changes": {"$ref": "#/$defs/changes"},
                    "kind": {"enum": ["invalid_type", "invalid_value"]},
                    "argument": {"type": "string"},
                }
            ),
        },
        "accepted": {
            "type": "array",
            "items": _object({"id": {"type": "string"}, "variant": VARIANT, "changes": {"$ref": "#/$defs/changes"}}),
        },
    }
)

# nonfinite.json (SPEC §1, §10): finite inputs, the replacements that make them non-finite at
# ``step``, the outputs of the steps before it, and the positions that must come out non-finite.
INDEX = {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1}
NONFINITE_FILE = _object(
    {
        "format_version": {"const": 1},
        "cases": {
            "type": "array",
            "items": _object(
                {
                    "id": {"type": "string"},
                    "variant": VARIANT,
                    "reset": {"enum": ["expected", "sampled"]},
                    "tau": {"type": "number", "exclusiveMinimum": 1},
                    "threshold": {"type": "number", "exclusiveMinimum": 0},
                    "reset_scale": {"oneOf": [{"type": "number", "minimum": 0}, {"type": "null"}]},
                    "surrogate_alpha": {"type": "number", "exclusiveMinimum": 0},
                    "seed": NULLABLE_SEED,
                    "step": {"type": "integer", "minimum": 0},
                    "inputs": _object(
                        {"x": {"$ref": "#/$defs/array"}, "weight": NULLABLE_ARRAY, "bias": NULLABLE_ARRAY}
                    ),
                    "replace": {
                        "type": "array",
                        "minItems": 1,
                        "items": _object(
                            {"input": {"enum": ["x", "weight", "bias"]}, "at": INDEX, "value": NON_FINITE}
                        ),
                    },
                    "expected": _object(
                        {
                            "spikes": {"$ref": "#/$defs/spike_array"},
                            "membrane": {"$ref": "#/$defs/array"},
                            "reset_probability": NULLABLE_ARRAY,
                            "reset": NULLABLE_SPIKES,
                            "uniform": NULLABLE_ARRAY,
                        }
                    ),
                    "nonfinite": {
                        "type": "array",
                        "minItems": 1,
                        "items": _object({"output": {"enum": ["membrane", "reset_probability"]}, "at": INDEX}),
                    },
                }
            ),
        },
    }
)

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "psu-golden-vectors-v1",
    "title": "psu golden vectors, format version 1",
    "$defs": {
        "array": ARRAY,
        "spike_array": SPIKE_ARRAY,
        "case": CASE,
        "case_file": CASE_FILE,
        "rng_file": RNG_FILE,
        "statistics_file": STATISTICS_FILE,
        "call_array": CALL_ARRAY,
        "call": CALL,
        "changes": CHANGES,
        "bad_input_file": BAD_INPUT_FILE,
        "nonfinite_file": NONFINITE_FILE,
    },
    "oneOf": [
        {"$ref": "#/$defs/case_file"},
        {"$ref": "#/$defs/rng_file"},
        {"$ref": "#/$defs/statistics_file"},
        {"$ref": "#/$defs/bad_input_file"},
        {"$ref": "#/$defs/nonfinite_file"},
    ],
}
