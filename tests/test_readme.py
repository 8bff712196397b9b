"""The root README's promises: its Python examples run, and the nox sessions it names exist."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
NOXFILE = ROOT / "noxfile.py"

FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
# "nox -s NAME", NAME possibly quoted and parametrised: nox -s "conformance(torch-cpu)".
NOX_SESSION = re.compile(r"\bnox\s+-s\s+[\"']?([A-Za-z_][\w-]*)")


def fenced_blocks(text: str) -> list[tuple[str, int, str]]:
    """Every fenced block of ``text`` as ``(info string, first line number of its code, code)``."""
    return [(m.group(1).strip(), text.count("\n", 0, m.start(2)) + 1, m.group(2)) for m in FENCE.finditer(text)]


def python_blocks() -> list[tuple[int, str]]:
    return [(line, code) for info, line, code in fenced_blocks(README.read_text(encoding="utf-8")) if info == "python"]


def top_level_imports(code: str) -> list[str]:
    """Distribution-level module names a block imports (``from psu_torch.nn import X`` -> psu_torch)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names += [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module.split(".")[0])
    return list(dict.fromkeys(names))


def first_line(code: str) -> str:
    return next((line.strip() for line in code.splitlines() if line.strip()), "<empty>")


BLOCKS = python_blocks()
#: The packages a README block may need that a given install lacks (each backend is optional).
OPTIONAL_MODULES = frozenset(
    {"torch", "jax", "flax", "optax", "numba", "cupy", "psu_torch", "psu_jax", "psu_numba", "psu_conformance"}
)


def test_readme_has_python_examples():
    # The examples this file runs: one per framework plus the online, seed, preset and porting ones.
    assert len(BLOCKS) >= 7, f"expected the README's Python examples, found {len(BLOCKS)} ```python blocks"


def test_every_python_looking_block_is_marked_python():
    # A block tagged "py"/"python3"/"pycon" would silently escape test_readme_python_block.
    text = README.read_text(encoding="utf-8")
    odd = [(line, info) for info, line, _ in fenced_blocks(text) if info != "python" and info.startswith("py")]
    assert not odd, f"README code blocks tagged other than 'python' are not executed; retag them: {odd}"


@pytest.mark.parametrize(("line", "code"), BLOCKS, ids=[f"line{line}" for line, _ in BLOCKS])
def test_readme_python_block(line: int, code: str):
    # Each block runs in a fresh namespace: a reader copies one example at a time, so each must
    # stand on its own (its own imports and data), which a shared namespace would not catch.
    missing = [name for name in top_level_imports(code) if importlib.util.find_spec(name) is None]
    # Only a framework a user may lack is a reason to skip; any other missing module is a typo.
    unknown = [name for name in missing if name not in OPTIONAL_MODULES]
    assert not unknown, f"README block at line {line} imports {unknown}, which is no module a user installs"
    if missing:
        pytest.skip(f"README block at line {line} needs {', '.join(missing)} (not installed)")
    namespace = {"__name__": "__readme__"}
    try:
        exec(compile(code, f"README.md:{line}", "exec"), namespace)
    except Exception as exc:  # report which example broke, with its traceback chained
        raise AssertionError(
            f"README block at line {line} ({first_line(code)!r}) raised {type(exc).__name__}: {exc}"
        ) from exc


#: A line that another framework writes differently: ``code  # JAX: other code``.
SWAP = re.compile(r"^(?P<indent>\s*)(?P<code>\S.*?)\s+# (?P<fw>JAX|PyTorch|Numba): (?P<other>.+)$")


def swapped(code: str) -> dict[str, str]:
    """The other frameworks' versions of a block whose lines end in ``# JAX: ...``: each such line
    replaced by its alternative, every other line unchanged."""
    out: dict[str, list[str]] = {}
    lines = code.splitlines()
    for i, line in enumerate(lines):
        m = SWAP.match(line)
        if m:
            out.setdefault(m["fw"], list(lines))[i] = m["indent"] + m["other"]
    for fw, fw_lines in out.items():
        for i, line in enumerate(lines):
            m = SWAP.match(line)
            if m and m["fw"] != fw:
                fw_lines[i] = m["indent"] + m["code"]
    return {fw: "\n".join(v) + "\n" for fw, v in out.items()}


SWAPPED = [(line, fw, other) for line, code in BLOCKS for fw, other in swapped(code).items()]


def test_one_snippet_runs_on_torch_and_jax():
    # The README promises one snippet that runs unchanged on torch and, with the framework swapped, JAX.
    assert {fw for _, fw, _ in SWAPPED} >= {"JAX"}, "no README block carries '# JAX:' alternatives"


@pytest.mark.parametrize(("line", "fw", "code"), SWAPPED, ids=[f"line{line}-{fw}" for line, fw, _ in SWAPPED])
def test_readme_block_with_the_framework_swapped(line: int, fw: str, code: str):
    test_readme_python_block(line, code)


def nox_sessions() -> set[str]:
    """Names of the functions decorated with ``@nox.session`` (or its ``name=``), parsed, not run."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(NOXFILE.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.FunctionDef):
            continue
        for dec in node.decorator_list:
            target = dec.func if isinstance(dec, ast.Call) else dec
            if ast.unparse(target) not in ("nox.session", "session"):
                continue
            names.add(node.name)
            if isinstance(dec, ast.Call):
                names.update(
                    kw.value.value for kw in dec.keywords if kw.arg == "name" and isinstance(kw.value, ast.Constant)
                )
    return names


def test_nox_sessions_named_in_readme_exist():
    mentioned = set(NOX_SESSION.findall(README.read_text(encoding="utf-8")))
    assert mentioned, "README.md names no `nox -s` session"
    sessions = nox_sessions()
    assert not mentioned - sessions, (
        f"README.md names nox sessions that noxfile.py lacks: {sorted(mentioned - sessions)} "
        f"(it has {sorted(sessions)})"
    )
