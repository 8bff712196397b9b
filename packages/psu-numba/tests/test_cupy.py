"""psu_numba.cupy: the CUDA C source compiles with nvcc (device code for sm_80, plus a host
program that checks the Threefry known answers of SPEC §6 with the very function the kernels
use); without CuPy or a GPU the adapter reports no device and calls say what is missing. On a
GPU with CuPy, the conformance suite (``--psu-backend cupy --psu-device cuda``) runs it."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from psu_numba.cupy import kernels

HOST_MAIN = r"""
#include <cstdio>
#include "kernels.cu"
int main() {
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
    assert run.stdout.split() == ["6b200159", "99ba4efe", "1cb996fc", "bb002be7", "c4923a9c", "483df7a0"]


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
