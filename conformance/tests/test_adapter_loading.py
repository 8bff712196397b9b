"""Finding the backend: entry points, module:callable, and the errors when that fails."""

from __future__ import annotations

import pytest

from psu_conformance.adapter import Adapter, BackendError, load_adapter, missing_methods, registered_backends
from psu_core.adapter import ReferenceAdapter


def test_reference_is_registered() -> None:
    assert registered_backends()["reference"] == "psu_core.adapter:ReferenceAdapter"


def test_entry_point_name() -> None:
    label, adapter = load_adapter("reference")
    assert label == "reference" and isinstance(adapter, ReferenceAdapter)
    assert isinstance(adapter, Adapter)  # the runtime-checkable protocol


def test_module_callable_uses_the_adapter_name() -> None:
    label, adapter = load_adapter("psu_core.adapter:ReferenceAdapter")
    assert label == "reference" and isinstance(adapter, ReferenceAdapter)


def test_unknown_name_lists_the_registered_ones() -> None:
    with pytest.raises(BackendError, match=r"unknown --psu-backend 'nope'; registered backends .*reference"):
        load_adapter("nope")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module_xyz:make", "cannot import 'no_such_module_xyz'"),
        ("psu_core.adapter:NoSuchThing", "has no attribute 'NoSuchThing'"),
        ("psu_core.adapter:", "expected 'module:callable'"),
        ("psu_core.adapter:ReferenceAdapter.name", "does not name a callable"),
    ],
)
def test_bad_module_callable(spec: str, message: str) -> None:
    with pytest.raises(BackendError, match=message):
        load_adapter(spec)


def test_missing_methods() -> None:
    class Half:
        name = "half"

        def devices(self) -> list[str]:
            return []

        def forward(self) -> None: ...

    assert missing_methods(Half()) == ["dtypes", "vjp", "online", "threefry2x32", "uniforms"]
    assert missing_methods(object()) == [
        "name",
        "devices",
        "dtypes",
        "forward",
        "vjp",
        "online",
        "threefry2x32",
        "uniforms",
    ]
    assert missing_methods(ReferenceAdapter()) == []


def _failing_factory() -> None:
    raise RuntimeError("no driver")


def test_factory_error_is_reported() -> None:
    with pytest.raises(BackendError, match=r"creating the adapter failed: RuntimeError\('no driver'\)"):
        load_adapter(f"{__name__}:_failing_factory")
