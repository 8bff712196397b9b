"""The process-boundary adapter: a port in any language, driven over the line protocol of PORTING.md.

``--psu-backend exec:"node ports/js/adapter.mjs"`` starts the command once per session (split as a
POSIX shell would, run in the current directory, with this environment; POSIX only: the reply
timeout waits on the pipe with ``select``) and speaks to it one JSON
request per line on its stdin, one JSON reply per line on its stdout. ``protocol.schema.json``
beside this module is the protocol's JSON Schema (requests and replies).

Values travel in the JSON encoding of a call (:mod:`psu_core.vectors.calls`, SPEC §10), the one
``bad_input.json`` uses:

* an array is ``{"shape": [...], "data": [...]}``, ``data`` flat in C order; a request's
  non-floating array (the bad-input group's integer ``x``) adds ``"dtype"`` (e.g. ``"int64"``),
  and a floating one has no ``dtype`` (float64 values; the port computes in the request's dtype);
* a float that is not finite is the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``, both ways;
* a seed is ``null`` or a decimal string (``"18446744073709551615"``): exact in any JSON reader;
* Threefry words are JSON integers (below 2**32, exact everywhere).

A reply ``{"error": {"kind", "argument", "message"}}`` becomes ``TypeError`` (kind
``invalid_type``) or ``ValueError`` (``invalid_value``) whose message starts with the argument's
name, so that the bad-input group runs unchanged; any other kind is :class:`ExecPortError`.
"""

from __future__ import annotations

import json
import os
import select
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from psu_core.vectors.calls import decode_array, decode_float, encode_call, encode_seed, encode_value

#: Version of the line protocol; the port's ``hello`` reply must name it.
PROTOCOL_VERSION = 1
#: ``--psu-backend`` prefix that selects this adapter.
PREFIX = "exec:"
#: Seconds to wait for one reply (a port that never flushes its stdout would hang the suite).
TIMEOUT_ENV = "PSU_EXEC_TIMEOUT"
DEFAULT_TIMEOUT = 600.0
#: When set, every request and reply is appended to this file (``> request`` / ``< reply`` lines).
LOG_ENV = "PSU_EXEC_LOG"
#: Why the api group does not apply to a port behind this protocol (it skips with this reason).
API_NOT_APPLICABLE = (
    "SPEC §11 states Python signatures, which do not apply to a port in another language behind the "
    "exec protocol; its calls are checked by every other group through the protocol"
)


class ExecPortError(RuntimeError):
    """The port broke the protocol, crashed, or reported a failure that is not a SPEC §8 error."""


# ----------------------------------------------------------------------------- encoding


def from_wire(obj: Any, what: str) -> np.ndarray:
    """A reply's ``{"shape", "data"}`` as a float64 NumPy array (``"NaN"`` etc. decoded)."""
    if not (isinstance(obj, dict) and isinstance(obj.get("shape"), list) and isinstance(obj.get("data"), list)):
        raise ExecPortError(f"{what}: expected an array {{'shape': [...], 'data': [...]}}, got {_short(obj)}")
    if any(v is None or isinstance(v, bool) for v in obj["data"]):
        raise ExecPortError(f'{what}: null or a boolean among the values (a float that is not finite is "NaN", ...)')
    try:
        return decode_array({"shape": obj["shape"], "data": obj["data"]})
    except (TypeError, ValueError) as exc:
        raise ExecPortError(f"{what}: {len(obj['data'])} values for shape {obj['shape']} ({exc})") from None


def wire_case(case: dict[str, Any]) -> dict[str, Any]:
    """The suite's case as the protocol's ``case`` (every key, ``validate`` defaulting to false)."""
    return encode_call({"validate": False, **case})


def _short(obj: Any, limit: int = 300) -> str:
    text = obj if isinstance(obj, str) else json.dumps(obj)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def raise_error(error: Any) -> None:
    """Turn an ``{"error": ...}`` reply into the exception the suite expects (SPEC §8)."""
    if not isinstance(error, dict):
        raise ExecPortError(f"malformed error reply: {_short(error)}")
    kind, argument, message = error.get("kind"), error.get("argument"), str(error.get("message", ""))
    if kind in ("invalid_type", "invalid_value"):
        if not isinstance(argument, str) or not argument:
            raise ExecPortError(f"error of kind {kind} without the argument's name: {_short(error)}")
        raise (TypeError if kind == "invalid_type" else ValueError)(f"{argument}: {message}")
    raise ExecPortError(f"the port failed ({kind}): {message}")


# ----------------------------------------------------------------------------- the adapter


class ExecAdapter:
    """An adapter (``psu_conformance.adapter.Adapter``) that forwards every call to a program."""

    #: The api group skips for this adapter, with this reason (and for no other adapter).
    api_not_applicable = API_NOT_APPLICABLE

    def __init__(self, command: str) -> None:
        argv = shlex.split(command)
        if not argv:
            raise ValueError(f'{PREFIX}: no command given (e.g. {PREFIX}"node ports/js/adapter.mjs")')
        self.command = command
        self.timeout = float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT))
        log = os.environ.get(LOG_ENV)
        self._log = open(log, "a", encoding="utf-8") if log else None  # noqa: SIM115 - lives as long as the port
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - read back when the port fails
        try:
            self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)
        except OSError as exc:
            raise ExecPortError(f"cannot start {command!r}: {exc}") from exc
        self._buffer = b""
        hello = self.request({"op": "hello"})
        if hello.get("protocol") != PROTOCOL_VERSION or not isinstance(hello.get("name"), str):
            raise ExecPortError(
                f"{command!r} answered hello with {_short(hello)}; expected protocol {PROTOCOL_VERSION} and a name"
            )
        self.name: str = hello["name"]

    # -- transport

    def _stderr_tail(self) -> str:
        self._stderr.seek(0)
        tail = self._stderr.read().decode("utf-8", "replace")[-2000:].strip()
        return f"; its stderr ends: {tail}" if tail else ""

    def _readline(self) -> bytes:
        out = self._proc.stdout
        assert out is not None
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([out], [], [], self.timeout)
            if not ready:
                raise ExecPortError(
                    f"{self.command!r} sent no reply within {self.timeout:g} s (does it flush stdout after each "
                    f"line? {TIMEOUT_ENV} sets the limit){self._stderr_tail()}"
                )
            chunk = os.read(out.fileno(), 1 << 20)
            if not chunk:
                try:
                    code = self._proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    code = None
                raise ExecPortError(f"{self.command!r} closed its stdout (exit code {code}){self._stderr_tail()}")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one request, return the reply object; raise the §8 exception for an error reply."""
        line = json.dumps(message, allow_nan=False, separators=(",", ":"))
        if self._log:
            self._log.write(f"> {line}\n")
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(line.encode("utf-8") + b"\n")
            self._proc.stdin.flush()
        except BrokenPipeError:
            code = self._proc.wait()
            raise ExecPortError(f"{self.command!r} is not running (exit code {code}){self._stderr_tail()}") from None
        raw = self._readline()
        if self._log:
            self._log.write(f"< {raw.decode('utf-8', 'replace')}\n")
            self._log.flush()
        try:
            reply = json.loads(raw)
        except ValueError:
            raise ExecPortError(
                f"reply to {message['op']} is not JSON: {_short(raw.decode('utf-8', 'replace'))}"
            ) from None
        if not isinstance(reply, dict):
            raise ExecPortError(f"reply to {message['op']} is not a JSON object: {_short(reply)}")
        if "error" in reply:
            raise_error(reply["error"])
        return reply

    def close(self) -> None:
        """End the port: close its stdin (its signal to exit), wait a moment, then stop it."""
        if self._proc.poll() is None:
            if self._proc.stdin:
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._log:
            self._log.close()
        self._stderr.close()

    # -- the adapter protocol

    def _field(self, reply: dict[str, Any], key: str, op: str) -> Any:
        if key not in reply:
            raise ExecPortError(f"reply to {op} lacks {key!r}: {_short(reply)}")
        return reply[key]

    def devices(self) -> list[str]:
        return list(self._field(self.request({"op": "devices"}), "devices", "devices"))

    def dtypes(self, device: str) -> list[str]:
        return list(self._field(self.request({"op": "dtypes", "device": device}), "dtypes", "dtypes"))

    def _arrays(self, reply: dict[str, Any], op: str, required: Sequence[str]) -> dict[str, Any]:
        out = {k: from_wire(self._field(reply, k, op), f"{op} {k}") for k in required}
        for k, v in reply.items():
            if k not in out and v is not None:
                out[k] = from_wire(v, f"{op} {k}") if isinstance(v, dict) else v
        return out

    def forward(self, case: dict[str, Any], *, device: str, dtype: str) -> dict[str, np.ndarray]:
        msg = {"op": "forward", "device": device, "dtype": dtype, "case": wire_case(case)}
        return self._arrays(self.request(msg), "forward", ("spikes", "membrane"))

    def online(self, case: dict[str, Any], *, device: str, dtype: str) -> dict[str, np.ndarray]:
        msg = {"op": "online", "device": device, "dtype": dtype, "case": wire_case(case)}
        return self._arrays(self.request(msg), "online", ("spikes", "membrane"))

    def vjp(self, case: dict[str, Any], grad_spikes: np.ndarray, *, device: str, dtype: str) -> dict[str, Any]:
        msg = {
            "op": "vjp",
            "device": device,
            "dtype": dtype,
            "case": wire_case(case),
            "grad_spikes": encode_value(grad_spikes),
        }
        out = self._arrays(self.request(msg), "vjp", ("x",))
        for k in ("threshold", "surrogate_alpha"):
            value = decode_float(out.get(k))
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ExecPortError(f"reply to vjp: {k!r} must be a number, got {_short(out.get(k))}")
            out[k] = float(value)
        return out

    def threefry2x32(self, key0, key1, counter0, counter1, *, device: str) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
        k0, k1, c0, c1 = np.broadcast_arrays(
            *(np.asarray(v, dtype=np.uint32) for v in (key0, key1, counter0, counter1))
        )
        msg = {"op": "threefry2x32", "device": device}
        msg.update(
            {
                name: a.ravel().tolist()
                for name, a in zip(("key0", "key1", "counter0", "counter1"), (k0, k1, c0, c1), strict=True)
            }
        )
        reply = self.request(msg)
        words = []
        for name in ("out0", "out1"):
            values = self._field(reply, name, "threefry2x32")
            if not (
                isinstance(values, list)
                and len(values) == k0.size
                and all(type(v) is int and 0 <= v < 2**32 for v in values)
            ):
                raise ExecPortError(
                    f"reply to threefry2x32: {name!r} must be {k0.size} words in [0, 2**32), got {_short(values)}"
                )
            words.append(np.asarray(values, dtype=np.uint32).reshape(k0.shape))
        return words[0], words[1]

    def uniforms(self, seed: int, shape: Sequence[int], *, device: str) -> np.ndarray:
        msg = {"op": "uniforms", "device": device, "seed": encode_seed(seed), "shape": [int(d) for d in shape]}
        return from_wire(self._field(self.request(msg), "uniform", "uniforms"), "uniforms uniform")


def api_not_applicable(adapter: Any) -> str | None:
    """The reason the api group skips for ``adapter``: only for an :class:`ExecAdapter` itself, so
    that no Python backend can declare its way out of the api group."""
    return API_NOT_APPLICABLE if type(adapter) is ExecAdapter else None
