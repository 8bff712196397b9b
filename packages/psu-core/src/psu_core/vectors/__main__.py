"""``python -m psu_core.vectors generate [--out DIR] [--check]`` and ``verify [--dir DIR]``.

``generate`` writes every vector file; with ``--check`` it writes nothing and exits 1 if any byte
of the files in the directory differs from a fresh generation. ``verify`` checks the manifest's
format version, every file's sha256 and entry count (SPEC §10), and every file against ``schema.json``; it
exits 0 only if all hold.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from psu_core import FORMAT_VERSION
from psu_core.vectors import DATA_DIR, entry_count


def cmd_generate(out: Path, check: bool) -> int:
    from psu_core.vectors.generate import generate

    files = generate()
    if check:
        problems = []
        for name, data in files.items():
            path = out / name
            if not path.exists():
                problems.append(f"{name}: missing")
            elif path.read_bytes() != data:
                problems.append(f"{name}: differs from a fresh generation")
        extra = sorted(p.name for p in out.glob("*.json") if p.name not in files)
        problems += [f"{name}: not produced by the generator" for name in extra]
        for p in problems:
            print(f"FAIL {p}", file=sys.stderr)
        print(f"checked {len(files)} files in {out}: {'OK' if not problems else f'{len(problems)} differ'}")
        return 1 if problems else 0
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    total = sum(len(d) for d in files.values())
    print(f"wrote {len(files)} files, {total / 1e6:.2f} MB, to {out}")
    return 0


def verify(directory: Path) -> list[str]:
    """Every problem found in the vector set at ``directory`` (empty when it is sound)."""
    import jsonschema

    problems: list[str] = []
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"manifest.json: unreadable ({exc})"]
    if manifest.get("format_version") != FORMAT_VERSION:
        problems.append(f"manifest.json: format_version {manifest.get('format_version')!r}, expected {FORMAT_VERSION}")
    try:
        schema = json.loads((directory / "schema.json").read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(schema)
    except (OSError, ValueError, jsonschema.SchemaError) as exc:
        return problems + [f"schema.json: unreadable ({exc})"]

    def validator(kind: str) -> jsonschema.Draft202012Validator:
        # Validate against the file's own definition rather than the top-level oneOf, so that an
        # error points at the offending value instead of at the root.
        sub = {k: v for k, v in schema.items() if k != "oneOf"}
        return jsonschema.Draft202012Validator({**sub, "$ref": f"#/$defs/{kind}"})

    for name, entry in sorted(manifest.get("files", {}).items()):
        path = directory / name
        if not path.exists():
            problems.append(f"{name}: listed in the manifest but missing")
            continue
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            problems.append(f"{name}: sha256 differs from the manifest")
        if name in ("schema.json", "manifest.json"):
            continue
        doc = json.loads(data)
        kind = {
            "rng.json": "rng_file",
            "statistics.json": "statistics_file",
            "bad_input.json": "bad_input_file",
            "nonfinite.json": "nonfinite_file",
        }.get(name, "case_file")
        errors = list(validator(kind).iter_errors(doc))
        if errors:
            e = errors[0]
            problems.append(
                f"{name}: {len(errors)} schema error(s), first at /{'/'.join(map(str, e.path))}: {e.message[:200]}"
            )
        if doc.get("format_version") != FORMAT_VERSION:
            problems.append(f"{name}: format_version {doc.get('format_version')!r}, expected {FORMAT_VERSION}")
        try:
            count = entry_count(name, doc)
        except (KeyError, TypeError):
            count = None  # the schema error above says what is missing
        if count is not None and count != entry["cases"]:
            problems.append(f"{name}: {count} entries, the manifest says {entry['cases']}")
    listed = set(manifest.get("files", {})) | {"manifest.json"}
    problems += [
        f"{p.name}: present but not in the manifest" for p in sorted(directory.glob("*.json")) if p.name not in listed
    ]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m psu_core.vectors", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="write the vector files (or compare them with --check)")
    g.add_argument("--out", type=Path, default=DATA_DIR, help=f"directory (default: {DATA_DIR})")
    g.add_argument("--check", action="store_true", help="regenerate in memory and fail on any difference")
    v = sub.add_parser("verify", help="check manifest, sha256, format version and schema")
    v.add_argument("--dir", type=Path, default=DATA_DIR, help=f"directory (default: {DATA_DIR})")
    args = parser.parse_args(argv)
    if args.command == "generate":
        return cmd_generate(args.out, args.check)
    problems = verify(args.dir)
    for p in problems:
        print(f"FAIL {p}", file=sys.stderr)
    print(f"verified {args.dir}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
