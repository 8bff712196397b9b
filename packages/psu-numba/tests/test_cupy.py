"""psu_numba.cupy: the CUDA C source compiles with nvcc (device code for sm_80, plus a host
program that checks the Threefry known answers of SPEC §6, the decay of SPEC §9 over 1000 steps
and the slope of a saturated reset probability (SPEC §5) with the very functions the kernels
use); without CuPy or a GPU the adapter reports no device and calls say what is missing. On a
GPU with CuPy, the conformance suite (``--psu-backend cupy --psu-device cuda``) runs it."""

from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pytest

from psu_numba.cupy import kernels

HOST_MAIN = r"""
#include <cmath>
#include <cstdio>
#include "kernels.cu"
int main() {
    // SPEC §9: psu(ones(1000), tau=1.00011508, reset_scale=0) in float32; V[999] = h (no reset)
    const double a = 1.0 / 1.00011508;
    const float a_hi = (float)a, a_lo = (float)(a - (double)a_hi);
    float h = 0.0f, h_old = 0.0f;
    for (int t = 0; t < 1000; ++t) {
        h = decay(h + 1.0f, a_hi, a_lo);
        h_old = a_hi * (h_old + 1.0f);
    }
    printf("%.9g %.9g\n", h, h_old);
    // SPEC §5: the slope of P = sigmoid(12) from the logit, and P (1 - P) of the rounded P
    float slope;
    const float p = sigmoid_slope(12.0f, &slope);
    printf("%.9g %.9g\n", slope, p * (1.0f - p));
    const unsigned in[3][4] = {{0u, 0u, 0u, 0u},
                               {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                               {0x13198a2eu, 0x03707344u, 0x243f6a88u, 0x85a308d3u}};
    for (int i = 0; i < 3; ++i) {
        unsigned a, b;
        threefry2x32(in[i][0], in[i][1], in[i][2], in[i][3], &a, &b);
        printf("%08x %08x\n", a, b);
    }
    return 0;
}
"""


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not found (no CUDA toolkit)")
def test_cuda_source_compiles_with_nvcc(tmp_path):
    (tmp_path / "kernels.cu").write_text(kernels.source())
    (tmp_path / "main.cu").write_text(HOST_MAIN)
    proc = subprocess.run(
        [
            "nvcc",
            "-arch=sm_80",
            "-std=c++14",
            "-Werror",
            "all-warnings",
            "-o",
            str(tmp_path / "main"),
            str(tmp_path / "main.cu"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    run = subprocess.run([str(tmp_path / "main")], capture_output=True, text=True, timeout=60)
    words = run.stdout.split()
    # the decay's one rounding keeps V[999] within float32's tolerance of 944.55388; a float32
    # a multiplied 1000 times gave 944.56818 (1.5x the tolerance)
    h, h_old, slope, slope_old = (float(w) for w in words[:4])
    a = 1 / 1.00011508
    want = a * (1 - a**1000) / (1 - a)  # sum_{k=1..1000} a^k
    assert abs(want - 944.55388) < 1e-5
    assert abs(h - want) <= 1e-5 + 1e-5 * want < abs(h_old - want)
    exact = math.exp(-12) / (1 + math.exp(-12)) ** 2
    assert abs(slope - exact) <= 1e-6 * exact < abs(slope_old - exact)
    assert words[4:] == ["6b200159", "99ba4efe", "1cb996fc", "bb002be7", "c4923a9c", "483df7a0"]


def test_entry_points_match_the_launchers():
    # Every kernel name the Python side launches exists in the source, and the reduction block
    # size agrees with the #define.
    src = kernels.source()
    for name in ("psu_forward_", "psu_vjp_", "psu_step_", "psu_rowdot_", "psu_rowsum_"):
        assert f"void {name}##SUFFIX(" in src
    for name in ("psu_rowsum_partial", "psu_threefry", "psu_uniforms"):
        assert f"void {name}(" in src
    assert f"#define RED_THREADS {kernels.RED_THREADS}" in src


def test_without_cupy_or_gpu():
    from psu_numba import cupy as api
    from psu_numba.adapter import CupyAdapter

    if api.available():
        pytest.skip("CuPy sees a CUDA device; the conformance suite covers this backend")
    assert CupyAdapter().devices() == []
    for call in (
        lambda: api.psu(np.zeros((3, 2), np.float32)),
        lambda: api.init_state("psu", (3,)),
        lambda: api.uniforms(1, (2, 3)),
    ):
        with pytest.raises(RuntimeError, match="CuPy|CUDA"):
            call()
