"""The Triton kernels: their logic under TRITON_INTERPRET=1 on CPU; on a GPU, the real thing."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from psu_torch_testlib import require_cuda

from psu_torch import functional as F

HAVE_TRITON = importlib.util.find_spec("triton") is not None


@pytest.mark.skipif(not HAVE_TRITON, reason="triton is not installed (pip install 'psu-torch[cuda]')")
def test_kernels_in_interpreter():
    # A subprocess: TRITON_INTERPRET must be set before triton decorates the kernels.
    env = dict(os.environ, TRITON_INTERPRET="1")
    script = Path(__file__).with_name("psu_torch_triton_interpret.py")
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "TRITON-INTERPRET-OK" in proc.stdout, proc.stdout + proc.stderr


def test_cuda_auto_path_is_triton():
    require_cuda()
    x = torch.randn(8, 4096, device="cuda", requires_grad=True)
    s, v = F.psu(x, threshold=0.5, return_membrane=True)
    s2, v2 = F.psu(x.detach().cpu(), threshold=0.5, impl="recurrence", return_membrane=True)
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


@pytest.mark.skipif(not HAVE_TRITON, reason="triton is not installed (pip install 'psu-torch[cuda]')")
@pytest.mark.filterwarnings("ignore:TRITON_DEFAULT_FP_FUSION")
def test_kernels_compile_for_cuda_without_a_gpu():
    # Triton compiles ahead of time for a named target, so the compiled-mode typing (uint32
    # Threefry with logical shifts, loop-carried float64 state) is checked on any machine.
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from psu_torch import _triton as K

    target = GPUTarget("cuda", 90, 32)
    fwd = {"X": "*fp32", "S": "*fp32", "V": "*fp32", "R": "*i8", "PARAMS": "*fp32", "KEY": "*i64",
           "N": "i32", "T": "i32", "WANT_V": "constexpr", "SAMPLED": "constexpr", "BLOCK": "constexpr"}
    compiled = triton.compile(
        ASTSource(K._psu_fwd_kernel, fwd, constexprs={"WANT_V": True, "SAMPLED": True, "BLOCK": 512}), target=target
    )
    ttir = compiled.asm["ttir"]
    assert "arith.shrsi" not in ttir and "arith.shrui" in ttir  # rotations are logical shifts
    bwd = {"X": "*fp64", "G": "*fp64", "R": "*i8", "GV": "*fp64", "PP": "*fp64", "PARTIAL": "*fp64",
           "PARAMS": "*fp64", "N": "i32", "T": "i32", "SAMPLED": "constexpr", "TIED": "constexpr",
           "NEED_SCALARS": "constexpr", "BLOCK": "constexpr"}
    compiled = triton.compile(
        ASTSource(K._psu_bwd_kernel, bwd, constexprs={"SAMPLED": True, "TIED": True, "NEED_SCALARS": True, "BLOCK": 512}),
        target=target,
    )
    assert "cubin" in compiled.asm
