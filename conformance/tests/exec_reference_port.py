"""A port behind the exec protocol, in Python over the float64 reference, for the suite's self-tests:
``--psu-backend exec:"python exec_reference_port.py [BUG]"``. Without BUG it is correct; each BUG
breaks one thing, so that the self-tests can show the matching group catches it:

    membrane-late    forward returns the membrane one step late
    lax-tau          tau <= 1 is replaced by 2 instead of being rejected
    wrong-kind       every invalid_value error is reported as invalid_type
    no-argument      errors come without the argument's name
    crash-on-vjp     the program exits on its first vjp request
    bad-hello        answers hello with another protocol version

The error's argument is the first word of the reference's message (its messages start with it).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np

from psu_core.adapter import ReferenceAdapter
from psu_core.vectors.calls import decode_array, decode_call, decode_seed, encode_value

ADAPTER = ReferenceAdapter()


def handle(q: dict[str, Any], bug: str | None) -> dict[str, Any]:
    op = q["op"]
    if op == "hello":
        return {"name": "python-exec", "protocol": 2 if bug == "bad-hello" else 1}
    if op == "devices":
        return {"devices": ADAPTER.devices()}
    if op == "dtypes":
        return {"dtypes": ADAPTER.dtypes(q["device"])}
    if op == "threefry2x32":
        out0, out1 = ADAPTER.threefry2x32(
            *(np.asarray(q[k], dtype=np.uint32) for k in ("key0", "key1", "counter0", "counter1")), device=q["device"]
        )
        return {"out0": out0.tolist(), "out1": out1.tolist()}
    if op == "uniforms":
        return {"uniform": encode_value(ADAPTER.uniforms(decode_seed(q["seed"]), q["shape"], device=q["device"]))}
    case = decode_call(q["case"])
    if bug == "lax-tau" and isinstance(case["tau"], float) and case["tau"] <= 1.0:
        case["tau"] = 2.0
    if op == "vjp":
        if bug == "crash-on-vjp":
            print("exec_reference_port: crashing on purpose", file=sys.stderr)
            sys.exit(3)
        g = ADAPTER.vjp(case, decode_array(q["grad_spikes"]), device=q["device"], dtype=q["dtype"])
        return {k: encode_value(v) for k, v in g.items()}
    out = (ADAPTER.forward if op == "forward" else ADAPTER.online)(case, device=q["device"], dtype=q["dtype"])
    if bug == "membrane-late" and op == "forward":
        v = out["membrane"]
        out["membrane"] = np.concatenate([np.zeros_like(v[:1]), v[:-1]], axis=0)
    return {k: encode_value(v) for k, v in out.items()}


def main() -> None:
    bug = sys.argv[1] if len(sys.argv) > 1 else None
    for line in sys.stdin:
        try:
            reply = handle(json.loads(line), bug)
        except (TypeError, ValueError) as exc:
            kind = "invalid_type" if isinstance(exc, TypeError) or bug == "wrong-kind" else "invalid_value"
            argument = None if bug == "no-argument" else str(exc).split()[0]
            reply = {"error": {"kind": kind, "argument": argument, "message": str(exc)}}
        sys.stdout.write(json.dumps(reply, allow_nan=False) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
