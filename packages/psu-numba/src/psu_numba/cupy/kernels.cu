// PSU-family kernels in CUDA C, for cupy.RawModule (NVRTC) and checked with nvcc by the tests.
//
// One thread per neuron loops over time (SPEC §3, §5); x is [T, N] row-major, so the threads of a
// warp touch consecutive neurons of one time step: coalesced. Reductions over neurons (dW, db and
// the scalar gradients) are fixed-order strided sums plus a fixed shared-memory tree per block:
// no atomics, the same bits on every call. No #include: NVRTC has no standard headers, and the
// math functions used (exp, expf, fabs, fabsf, fma, fmaf) are CUDA built-ins. decay and
// sigmoid_slope are also host functions, for the host checks of the unit tests.
//
// Entry points (extern "C", suffix _f32 / _f64 for float / double):
//   psu_forward_*   (code, x, w, b, T, N, a_hi, a_lo, gamma, theta, sampled, k0, k1,
//                    spikes, membrane, resets, want_membrane, want_resets)
//   psu_vjp_*       (code, x, g, w, b, T, N, a_hi, a_lo, gamma, theta, alpha, tied, sampled, k0, k1,
//                    dx, gv, pp, partial)
//   psu_step_*      (code, t, T, N, x_t, history, w, b, a_hi, a_lo, gamma, theta, sampled, k0, k1,
//                    h, r, q, spikes, membrane, resets)
//   psu_rowdot_*    (A, B, R, N, out, lower)     out[i, j] = sum_n A[i, n] B[j, n]   (grid R x R)
//   psu_rowsum_*    (A, N, out)                  out[i]    = sum_n A[i, n]           (grid R)
//   psu_rowsum_partial (A, N, out)              the same for the double partial sums
//   psu_threefry    (k0, k1, c0, c1, out0, out1, size)
//   psu_uniforms    (k0, k1, T, N, out)

#define PSU 0
#define IPSU 1
#define RPSU 2
#define RED_THREADS 256

typedef unsigned int u32;
typedef long long i64;

__host__ __device__ __forceinline__ u32 rotl32(u32 v, int r) { return (v << r) | (v >> (32 - r)); }

// Threefry-2x32 with 20 rounds (Random123; SPEC §6).
__host__ __device__ __forceinline__ void threefry2x32(u32 k0, u32 k1, u32 c0, u32 c1, u32* o0, u32* o1) {
    const u32 ks[3] = {k0, k1, k0 ^ k1 ^ 0x1BD11BDAu};
    const int R[8] = {13, 15, 26, 6, 17, 29, 16, 24};
    u32 x0 = c0 + ks[0];
    u32 x1 = c1 + ks[1];
#pragma unroll
    for (int i = 0; i < 20; ++i) {
        x0 += x1;
        x1 = rotl32(x1, R[i % 8]);
        x1 ^= x0;
        if (i % 4 == 3) {
            const int s = (i + 1) / 4;
            x0 += ks[s % 3];
            x1 += ks[(s + 1) % 3] + (u32)s;
        }
    }
    *o0 = x0;
    *o1 = x1;
}

// u = (w0 >> 8) * 2^-24, exact in float and double.
template <typename F>
__device__ __forceinline__ F uniform(u32 k0, u32 k1, i64 n, int t) {
    u32 w0, w1;
    threefry2x32(k0, k1, (u32)n, (u32)t, &w0, &w1);
    return (F)(w0 >> 8) * (F)5.9604644775390625e-08;
}

// Stable logistic: e = exp(-|z|); 1/(1+e) for z >= 0, e/(1+e) below.
__device__ __forceinline__ float sigmoid(float z) {
    const float e = expf(-fabsf(z));
    const float s = 1.0f / (1.0f + e);
    return z >= 0.0f ? s : e * s;
}
__device__ __forceinline__ double sigmoid(double z) {
    const double e = exp(-fabs(z));
    const double s = 1.0 / (1.0 + e);
    return z >= 0.0 ? s : e * s;
}

// sigmoid(z) and its slope sigmoid(z) sigmoid(-z) = e / (1 + e)^2 from one e = exp(-|z|): accurate
// where P (1 - P) of a rounded P near 1 is not (SPEC §5).
__host__ __device__ __forceinline__ float sigmoid_slope(float z, float* slope) {
    const float e = expf(-fabsf(z));
    const float s = 1.0f / (1.0f + e);
    *slope = e * s * s;
    return z >= 0.0f ? s : e * s;
}
__host__ __device__ __forceinline__ double sigmoid_slope(double z, double* slope) {
    const double e = exp(-fabs(z));
    const double s = 1.0 / (1.0 + e);
    *slope = e * s * s;
    return z >= 0.0 ? s : e * s;
}

// The decay a = 1/tau carried as a_hi = F(a), a_lo = F(a - a_hi) and applied with one rounding,
// v (a_hi + a_lo): float32's rounding of a must not compound over T steps (SPEC §9). a_lo is 0
// in double.
__host__ __device__ __forceinline__ float decay(float v, float a_hi, float a_lo) { return fmaf(v, a_hi, v * a_lo); }
__host__ __device__ __forceinline__ double decay(double v, double a_hi, double a_lo) { return fma(v, a_hi, v * a_lo); }

// b[t] + sum_{j<=t} W[t, j] x[j, n]: the masked product (upper triangle of W never read).
template <typename F>
__device__ __forceinline__ F mix(const F* w, const F* b, const F* x, int T, i64 N, int t, i64 n) {
    F acc = b[t];
    for (int j = 0; j <= t; ++j) acc += w[(i64)t * T + j] * x[(i64)j * N + n];
    return acc;
}

template <typename F>
__device__ void forward_impl(int code, const F* x, const F* w, const F* b, int T, i64 N, F a_hi, F a_lo, F gamma,
                             F theta, int sampled, u32 k0, u32 k1, F* spikes, F* membrane, F* resets,
                             int want_membrane, int want_resets) {
    const i64 n = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    F h = 0, r = 0, q = 0;
    for (int t = 0; t < T; ++t) {
        const i64 at = (i64)t * N + n;
        r = decay(r + q, a_hi, a_lo);
        const F xv = x[at];
        F hv;
        if (code == IPSU) {
            hv = mix(w, b, x, T, N, t, n);
            q = xv;
        } else {
            hv = decay(h + xv, a_hi, a_lo);
            h = hv;
            F p = sigmoid(code == PSU ? hv : mix(w, b, x, T, N, t, n));
            if (sampled) {
                p = uniform<F>(k0, k1, n, t) < p ? (F)1 : (F)0;
                if (want_resets) resets[at] = p;
            }
            q = p;
        }
        const F v = hv - gamma * r;
        spikes[at] = v > theta ? (F)1 : (F)0;
        if (want_membrane) membrane[at] = v;
    }
}

// Forward recomputed, then: gv = G dS/dV, pp = sigmoid(z) sigmoid(-z) (RPSU: later gZ), partial[0, n] =
// sum gV (1 + tied r), partial[1, n] = sum G dS/dalpha (double), and dL/dX (SPEC §5).
template <typename F>
__device__ void vjp_impl(int code, const F* x, const F* g, const F* w, const F* b, int T, i64 N, F a_hi,
                         F a_lo, F gamma, F theta, F alpha, int tied, int sampled, u32 k0, u32 k1, F* dx,
                         F* gv, F* pp, double* partial) {
    const i64 n = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    const F half_pi_alpha = (F)1.5707963267948966 * alpha;
    F h = 0, r = 0, q = 0;
    double acc_theta = 0.0, acc_alpha = 0.0;
    for (int t = 0; t < T; ++t) {
        const i64 at = (i64)t * N + n;
        r = decay(r + q, a_hi, a_lo);
        const F xv = x[at];
        F hv;
        if (code == IPSU) {
            hv = mix(w, b, x, T, N, t, n);
            q = xv;
        } else {
            hv = decay(h + xv, a_hi, a_lo);
            h = hv;
            F slope;
            const F p = sigmoid_slope(code == PSU ? hv : mix(w, b, x, T, N, t, n), &slope);
            pp[at] = slope;
            q = sampled ? (uniform<F>(k0, k1, n, t) < p ? (F)1 : (F)0) : p;
        }
        const F d = (hv - gamma * r) - theta;
        const F qa = half_pi_alpha * d;
        const F den = (F)2 * ((F)1 + qa * qa);
        const F gt = g[at];
        const F gvv = gt * (alpha / den);
        gv[at] = gvv;
        acc_alpha += (double)(gt * (d / den));
        acc_theta += (double)gvv;
        if (tied) acc_theta += (double)(gvv * r);
    }
    partial[n] = acc_theta;
    partial[N + n] = acc_alpha;
    F c = 0, e = 0;
    for (int t = T - 1; t >= 0; --t) {
        const i64 at = (i64)t * N + n;
        const F gvt = gv[at];
        if (code == PSU) {
            e = decay((gvt - gamma * c * pp[at]) + e, a_hi, a_lo);
            dx[at] = e;
        } else if (code == IPSU) {
            dx[at] = -gamma * c;
        } else {
            e = decay(gvt + e, a_hi, a_lo);
            dx[at] = e;
            pp[at] = -gamma * c * pp[at];
        }
        c = decay(c + gvt, a_hi, a_lo);
    }
    if (code != PSU) {
        const F* src = code == IPSU ? gv : pp;
        for (int j = 0; j < T; ++j) {
            F acc = 0;
            for (int t = j; t < T; ++t) acc += w[(i64)t * T + j] * src[(i64)t * N + n];
            dx[(i64)j * N + n] += acc;
        }
    }
}

template <typename F>
__device__ void step_impl(int code, int t, int T, i64 N, const F* x_t, F* history, const F* w, const F* b,
                          F a_hi, F a_lo, F gamma, F theta, int sampled, u32 k0, u32 k1, F* h, F* r, F* q,
                          F* spikes, F* membrane, F* resets) {
    const i64 n = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (n >= N) return;
    const F xv = x_t[n];
    const F rv = decay(r[n] + q[n], a_hi, a_lo);
    r[n] = rv;
    F mv = 0;
    if (code != PSU) {
        history[(i64)t * N + n] = xv;
        mv = mix(w, b, history, T, N, t, n);
    }
    F hv;
    if (code == IPSU) {
        hv = mv;
        q[n] = xv;
    } else {
        hv = decay(h[n] + xv, a_hi, a_lo);
        F p = sigmoid(code == PSU ? hv : mv);
        if (sampled) {
            p = uniform<F>(k0, k1, n, t) < p ? (F)1 : (F)0;
            resets[n] = p;
        }
        q[n] = p;
    }
    h[n] = hv;
    const F v = hv - gamma * rv;
    spikes[n] = v > theta ? (F)1 : (F)0;
    membrane[n] = v;
}

// Block tree over RED_THREADS partial sums; thread 0 returns the total.
__device__ __forceinline__ double block_sum(double acc) {
    __shared__ double buf[RED_THREADS];
    const int tid = threadIdx.x;
    buf[tid] = acc;
    __syncthreads();
    for (int s = RED_THREADS / 2; s > 0; s >>= 1) {
        if (tid < s) buf[tid] += buf[tid + s];
        __syncthreads();
    }
    return buf[0];
}

template <typename A, typename O>
__device__ void rowdot_impl(const A* a, const A* bm, int R, i64 N, O* out, int lower) {
    const int i = blockIdx.x, j = blockIdx.y;
    double acc = 0.0;
    if (!lower || j <= i)
        for (i64 n = threadIdx.x; n < N; n += RED_THREADS) acc += (double)(a[(i64)i * N + n] * bm[(i64)j * N + n]);
    const double total = block_sum(acc);
    if (threadIdx.x == 0) out[(i64)i * R + j] = (O)total;
}

template <typename A, typename O>
__device__ void rowsum_impl(const A* a, i64 N, O* out) {
    const int i = blockIdx.x;
    double acc = 0.0;
    for (i64 n = threadIdx.x; n < N; n += RED_THREADS) acc += (double)a[(i64)i * N + n];
    const double total = block_sum(acc);
    if (threadIdx.x == 0) out[i] = (O)total;
}

#define PSU_ENTRY_POINTS(F, SUFFIX)                                                                   \
    extern "C" __global__ void psu_forward_##SUFFIX(                                                  \
        int code, const F* x, const F* w, const F* b, int T, i64 N, F a_hi, F a_lo, F gamma, F theta, \
        int sampled, u32 k0, u32 k1, F* spikes, F* membrane, F* resets, int want_membrane,            \
        int want_resets) {                                                                            \
        forward_impl<F>(code, x, w, b, T, N, a_hi, a_lo, gamma, theta, sampled, k0, k1, spikes, membrane,      \
                        resets, want_membrane, want_resets);                                          \
    }                                                                                                 \
    extern "C" __global__ void psu_vjp_##SUFFIX(                                                      \
        int code, const F* x, const F* g, const F* w, const F* b, int T, i64 N, F a_hi, F a_lo,       \
        F gamma, F theta, F alpha, int tied, int sampled, u32 k0, u32 k1, F* dx, F* gv, F* pp,        \
        double* partial) {                                                                            \
        vjp_impl<F>(code, x, g, w, b, T, N, a_hi, a_lo, gamma, theta, alpha, tied, sampled, k0, k1, dx, gv,    \
                    pp, partial);                                                                     \
    }                                                                                                 \
    extern "C" __global__ void psu_step_##SUFFIX(                                                     \
        int code, int t, int T, i64 N, const F* x_t, F* history, const F* w, const F* b, F a_hi,      \
        F a_lo, F gamma, F theta, int sampled, u32 k0, u32 k1, F* h, F* r, F* q, F* spikes,           \
        F* membrane, F* resets) {                                                                     \
        step_impl<F>(code, t, T, N, x_t, history, w, b, a_hi, a_lo, gamma, theta, sampled, k0, k1, h, r, q,    \
                     spikes, membrane, resets);                                                       \
    }                                                                                                 \
    extern "C" __global__ void psu_rowdot_##SUFFIX(const F* a, const F* bm, int R, i64 N, F* out,     \
                                                   int lower) {                                       \
        rowdot_impl<F, F>(a, bm, R, N, out, lower);                                                   \
    }                                                                                                 \
    extern "C" __global__ void psu_rowsum_##SUFFIX(const F* a, i64 N, F* out) {                       \
        rowsum_impl<F, F>(a, N, out);                                                                 \
    }

PSU_ENTRY_POINTS(float, f32)
PSU_ENTRY_POINTS(double, f64)

extern "C" __global__ void psu_rowsum_partial(const double* a, i64 N, double* out) {
    rowsum_impl<double, double>(a, N, out);
}

extern "C" __global__ void psu_threefry(const u32* k0, const u32* k1, const u32* c0, const u32* c1,
                                        u32* out0, u32* out1, i64 size) {
    const i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < size) threefry2x32(k0[i], k1[i], c0[i], c1[i], &out0[i], &out1[i]);
}

extern "C" __global__ void psu_uniforms(u32 k0, u32 k1, int T, i64 N, double* out) {
    const i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (i64)T * N) {
        const int t = (int)(i / N);
        const i64 n = i - (i64)t * N;
        out[i] = uniform<double>(k0, k1, n, t);
    }
}
