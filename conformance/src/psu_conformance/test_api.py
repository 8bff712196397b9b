"""Group api: the backend's public names, parameters, defaults and result types are those of SPEC §11
(:mod:`psu_core.api`), except the idioms its adapter declares, each with its reason.

The adapter names where its public API lives with ``public_api()`` (a module or any object with the
names as attributes) and declares its idioms in ``api_idioms``: ``{"<name>.<parameter>": reason}``
for a parameter that differs, ``{"<name>": reason}`` for a name it does not have. An idiom that
does not correspond to a difference is itself an error, so the list stays true.

A port in another language behind the exec protocol has no Python signatures: for that adapter
alone (:func:`psu_conformance.exec_adapter.api_not_applicable`) the group skips, saying why.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from psu_conformance.exec_adapter import api_not_applicable
from psu_core import api


@pytest.fixture(autouse=True)
def _python_signatures_apply(psu_adapter):  # type: ignore[no-untyped-def]
    reason = api_not_applicable(psu_adapter)
    if reason is not None:
        pytest.skip(reason)


def _surface(adapter: Any) -> Any:
    get = getattr(adapter, "public_api", None)
    if not callable(get):
        pytest.fail(
            f"adapter {type(adapter).__name__} has no public_api(): it must name the module (or object) "
            "holding the SPEC §11 names (see psu_conformance.adapter.Adapter.public_api)",
            pytrace=False,
        )
    return get()


def _idioms(adapter: Any) -> dict[str, str]:
    return dict(getattr(adapter, "api_idioms", {}) or {})


def signature_differences(name: str, obj: Any) -> dict[str, str]:
    """``{"<name>.<parameter>": what differs}`` between ``obj``'s signature and SPEC §11's."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError) as exc:
        return {name: f"has no inspectable signature ({exc})"}
    actual = {p.name: p for p in sig.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    out: dict[str, str] = {}
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            out[f"{name}.{p.name}"] = (
                f"takes {'*' if p.kind == p.VAR_POSITIONAL else '**'}{p.name}: SPEC §11 names every parameter"
            )
    expected = api.SIGNATURES[name]
    for e in expected:
        a = actual.get(e.name)
        key = f"{name}.{e.name}"
        if a is None:
            out[key] = f"lacks parameter {e}"
            continue
        a_kw = a.kind == a.KEYWORD_ONLY
        if e.keyword_only and not a_kw:
            out[key] = f"{e.name} must be keyword-only"
        elif not e.keyword_only and a.kind not in (a.POSITIONAL_ONLY, a.POSITIONAL_OR_KEYWORD):
            out[key] = f"{e.name} must be positional"
        a_default = api.REQUIRED if a.default is a.empty else api.default_name(a.default)
        if a_default != e.default:
            shown = "none (required)" if a_default == api.REQUIRED else repr(a_default)
            want = "none (required)" if e.default == api.REQUIRED else repr(e.default)
            out.setdefault(key, f"default of {e.name} is {shown}, SPEC §11 says {want}")
    for extra in actual.keys() - {e.name for e in expected}:
        out[f"{name}.{extra}"] = f"has parameter {extra!r}, not in SPEC §11"
    want_order = [e.name for e in expected if not e.keyword_only]
    got_order = [p.name for p in actual.values() if p.kind != p.KEYWORD_ONLY and p.name in want_order]
    if got_order != [n for n in want_order if n in actual]:
        out[f"{name}.(order)"] = f"positional parameters in the order {got_order}, SPEC §11 says {want_order}"
    return out


def differences(surface: Any) -> dict[str, str]:
    """Every difference of a public API surface from SPEC §11, keyed as idioms are."""
    out: dict[str, str] = {}
    for name in api.NAMES:
        obj = getattr(surface, name, None)
        if obj is None:
            out[name] = f"has no {name}"
        elif name in api.SIGNATURES:
            out |= signature_differences(name, obj)
        else:
            fields = tuple(getattr(obj, "_fields", ()))
            if fields != api.RESULTS[name]:
                out[f"{name}._fields"] = f"{name} has fields {fields}, SPEC §11 says {api.RESULTS[name]}"
        if name == "OnlineStepper" and obj is not None:
            for member in api.STEPPER_MEMBERS:
                if not hasattr(obj, member):
                    out[f"OnlineStepper.{member}"] = f"OnlineStepper has no {member}"
    return out


def _check(adapter: Any, prefix: str) -> None:
    diffs = {k: v for k, v in differences(_surface(adapter)).items() if k == prefix or k.startswith(prefix + ".")}
    declared = _idioms(adapter)
    undeclared = [f"{k}: {v}" for k, v in sorted(diffs.items()) if k not in declared]
    if undeclared:
        pytest.fail(
            f"{len(undeclared)} difference(s) from SPEC §11 not declared as idioms:\n  " + "\n  ".join(undeclared),
            pytrace=False,
        )


@pytest.mark.parametrize("name", list(api.NAMES))
def test_public_name(psu_adapter, name):  # type: ignore[no-untyped-def]
    _check(psu_adapter, name)


def test_declared_idioms_are_real(psu_adapter):  # type: ignore[no-untyped-def]
    declared = _idioms(psu_adapter)
    diffs = differences(_surface(psu_adapter))
    stale = sorted(k for k in declared if k not in diffs)
    empty = sorted(k for k, why in declared.items() if not str(why).strip())
    if stale or empty:
        pytest.fail(
            f"idioms that match no difference (stale): {stale}; idioms without a reason: {empty}", pytrace=False
        )
