"""The Triton kernels: their logic under TRITON_INTERPRET=1 on CPU; on a GPU, the real thing."""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from psu_torch_testlib import require_cuda

from psu_torch import functional as F
from psu_torch._precision import compute_dtype

HAVE_TRITON = importlib.util.find_spec("triton") is not None


def _version(module) -> tuple[int, int]:
    return tuple(int(p) for p in module.__version__.split(".")[:2])


def _interpreter_stores_nothing() -> bool:
    # Measured: triton 3.0 and 3.1's interpreter writes no output at all under NumPy 2.0 to 2.4 (its
    # stores go through a C extension built against NumPy 1); 3.2 and later work with both.
    import triton

    return _version(triton) < (3, 2) and _version(np) >= (2, 0)


@pytest.mark.skipif(not HAVE_TRITON, reason="triton is not installed (pip install 'psu-torch[cuda]')")
@pytest.mark.parametrize("part", [[], ["chunked"]], ids=["kernels", "chunked"])
def test_kernels_in_interpreter(part):
    if _interpreter_stores_nothing():
        pytest.skip("triton < 3.2's interpreter writes no output under NumPy >= 2 (use NumPy < 2 to run it there)")
    # A subprocess: TRITON_INTERPRET must be set before triton decorates the kernels.
    env = dict(os.environ, TRITON_INTERPRET="1")
    script = Path(__file__).with_name("psu_torch_triton_interpret.py")
    proc = subprocess.run([sys.executable, str(script), *part], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "TRITON-INTERPRET-OK" in proc.stdout, proc.stdout + proc.stderr


def test_cuda_auto_path_is_triton():
    require_cuda()
    x = torch.randn(8, 4096, device="cuda", requires_grad=True)
    s, v, _ = F.psu(x, threshold=0.5, return_membrane=True)
    s2, v2, _ = F.psu(x.detach().cpu(), threshold=0.5, method="recurrence", return_membrane=True)
    assert torch.equal(s.cpu(), s2)
    torch.testing.assert_close(v.cpu(), v2, rtol=1e-5, atol=1e-5)
    s.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_cuda_autocast_half():
    require_cuda()
    x = torch.randn(8, 1024, device="cuda")
    with torch.autocast("cuda", dtype=torch.float16):
        y = torch.nn.Linear(1024, 1024).cuda()(x)
        s = F.psu(y)
    assert s.dtype == torch.float16


_PTR = {torch.float64: "*fp64", torch.float32: "*fp32", torch.float16: "*fp16", torch.bfloat16: "*bf16"}
# An arithmetic operation on half-precision values in Triton's IR (TTIR), e.g.
# "%h = arith.addf %x, %y : tensor<512xbf16>": the kernels must have none.
_HALF_ARITHMETIC = re.compile(r"arith\.(?:addf|subf|mulf|divf|cmpf)\b[^\n]*:\s*(?:tensor<\d+x)?b?f16\b")


def _compile(kernel, types: dict[str, str], constexprs: dict[str, object], target):
    """``kernel`` compiled ahead of time for ``target``: ``types`` of its runtime arguments and the
    values of its constexpr ones, by name, in the form each triton 3.x's ``ASTSource`` takes."""
    import triton
    from triton.compiler import ASTSource

    names = kernel.arg_names
    if "constexprs" in inspect.signature(ASTSource).parameters:  # triton >= 3.3
        signature = {n: types.get(n, "constexpr") for n in names}
        return triton.compile(ASTSource(kernel, signature, constexprs=constexprs), target=target)
    if _version(triton) >= (3, 2):  # by name, constants apart
        return triton.compile(ASTSource(kernel, types, constants=constexprs), target=target)
    # 3.0, 3.1: by position
    signature = {names.index(n): t for n, t in types.items()}
    constants = {names.index(n): v for n, v in constexprs.items()}
    return triton.compile(ASTSource(kernel, signature, constants=constants), target=target)


@pytest.mark.skipif(not HAVE_TRITON, reason="triton is not installed (pip install 'psu-torch[cuda]')")
@pytest.mark.filterwarnings("ignore:TRITON_DEFAULT_FP_FUSION")
@pytest.mark.parametrize("dtype", list(_PTR), ids=lambda d: str(d).removeprefix("torch."))
def test_kernels_compile_for_cuda_without_a_gpu(dtype):
    # Triton compiles ahead of time for a named target, so the compiled-mode typing (uint32
    # Threefry with logical shifts, loop-carried float64 state, half precision loaded, computed in
    # float32 and rounded only when stored) is checked on any machine: every kernel, for each dtype
    # of X, with every flag on (T = 65: several chunks, the last padded) and every flag off (T = 1).
    from triton.backends.compiler import GPUTarget

    from psu_torch import _triton as K

    target = GPUTarget("cuda", 90, 32)
    x, c = _PTR[dtype], _PTR[compute_dtype(dtype)]
    fwd = {"X": x, "S": x, "V": x, "R": "*i8", "PARAMS": c, "KEY": "*i64", "N": "i32"}
    bwd = {"X": x, "G": x, "R": "*i8", "BND": c, "DX": x, "PARTIAL": c, "PARAMS": c, "N": "i32"}
    loop_bwd = {"X": x, "G": x, "R": "*i8", "GV": c, "PP": c, "DX": x, "PARTIAL": c, "PARAMS": c, "N": "i32"}
    for on in (True, False):
        T = 65 if on else 1
        fwd_flags = {"T": T, "WANT_V": on, "SAMPLED": on}
        bwd_flags = {"T": T, "SAMPLED": on, "TIED": on, "NEED_SCALARS": on}
        # the loop kernels on every release (the only ones before 3.3), the chunked ones from 3.3
        compiled = [
            _compile(K._psu_fwd_loop_kernel, fwd, {**fwd_flags, "BLOCK": K._LOOP_BLOCK}, target),
            _compile(K._psu_bwd_scratch_kernel, loop_bwd, {**bwd_flags, "BLOCK": K._LOOP_BLOCK}, target),
        ]
        if K.CHUNKED:
            fwd_chunk, bwd_chunk = K._chunk(T, dtype, K._FWD_CHUNK), K._chunk(T, dtype, K._BWD_CHUNK)
            compiled += [
                _compile(K._psu_fwd_kernel, fwd, {**fwd_flags, "CHUNK": fwd_chunk, "BLOCK": K._BLOCK}, target),
                _compile(K._psu_bwd_kernel, bwd, {**bwd_flags, "CHUNK": bwd_chunk, "BLOCK": K._BLOCK}, target),
            ]
        for kernel in compiled:
            ttir = kernel.asm["ttir"]
            assert "cubin" in kernel.asm
            assert not _HALF_ARITHMETIC.search(ttir), _HALF_ARITHMETIC.search(ttir).group(0)
            if on and dtype in (torch.float16, torch.bfloat16):
                assert "arith.extf" in ttir and "arith.truncf" in ttir  # upcast on load, rounded on store
        if on:
            for kernel in compiled[::2]:  # the forward kernels
                ttir = kernel.asm["ttir"]
                assert "arith.shrsi" not in ttir and "arith.shrui" in ttir  # rotations are logical shifts
