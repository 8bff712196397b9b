"""Repository-level promises: CI runs the README's test command."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_test_command() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- test-command:[^>]*-->\s*```bash\n(.+?)\n```", text)
    assert m, "README.md must mark its test command with <!-- test-command: ... -->"
    return m.group(1).strip()


def test_ci_runs_exactly_the_readme_test_command():
    commands = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#") and not line.startswith(("set ", "cd "))
    ]
    assert commands == [readme_test_command()]


# ----------------------------------------------------------------------------- cited paths
#: A Markdown link target: ](path) or ](path#anchor).
MD_LINK = re.compile(r"\]\(([^)\s]+)\)")
#: A path written in backticks, in code or docs, under one of the repository's top-level folders.
TOP = ("packages", "conformance", "benchmarks", "examples", "gpucheck", "tests", ".ci")
CITED = re.compile(r"`((?:\.\./)*(?:" + "|".join(re.escape(t) for t in TOP) + r")/[\w./-]+)`")
#: Outputs that commands write (cited as where to look, not as files in the tree).
WRITTEN = (
    "benchmarks/results/",
    "benchmarks/RESULTS-cuda.md",
    "reports/",
    "examples/training_curves.png",
    "examples/results.json",
)


def tracked(*patterns: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", *patterns], cwd=ROOT, capture_output=True, text=True, check=True)
    return [ROOT / line for line in out.stdout.splitlines() if line]


def _exists(base: Path, target: str) -> bool:
    target = target.split("#", 1)[0].rstrip("/")
    # a glob, a format string or a placeholder a reader fills in (packages/psu-NAME/)
    if not target or "*" in target or "{" in target or re.search(r"\b(NAME|WHEELS|DIR)\b", target):
        return True
    return (base / target).exists() or (ROOT / target).exists()


def test_every_cited_path_exists():
    missing = []
    for path in tracked("*.md", "*.py", "*.toml", ".ci/run"):
        if "/vectors/data/" in str(path):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        links = MD_LINK.findall(text) if path.suffix == ".md" else []
        for target in links + CITED.findall(text):
            if target.startswith(("http:", "https:", "mailto:", "#")) or target.startswith(WRITTEN):
                continue
            if not _exists(path.parent, target):
                missing.append(f"{path.relative_to(ROOT)}: {target}")
    assert not missing, "paths cited but not in the tree:\n" + "\n".join(missing)


def test_test_module_names_are_unique():
    # `nox -s tests` collects every package's tests in one pytest run (rootdir import mode): two
    # test folders without __init__.py holding the same module name stop the whole collection.
    seen: dict[str, Path] = {}
    clashes = []
    for path in tracked("*/tests/*.py", "tests/*.py"):
        if (path.parent / "__init__.py").exists() or not path.name.startswith(("test_", "conftest")):
            continue
        if path.name == "conftest.py":
            continue
        other = seen.setdefault(path.name, path)
        if other != path:
            clashes.append(f"{other.relative_to(ROOT)} and {path.relative_to(ROOT)}")
    assert not clashes, "test modules with the same name in one pytest run:\n" + "\n".join(clashes)
