/* Dense layers at small batch: out[n][m] = act(sum_k w[m][k] x[n][k] + b[m]).
 * Their cost is reading the weights once, so these kernels stream each row
 * of w once for every few batch items of the box, with no tiling to waste. */
#include "clnn_common.h"

#ifndef LS
#define LS 256
#endif
#ifndef KL
#define KL 64
#endif
#ifndef RR
#define RR 4
#endif
#ifndef NB
#define NB 16
#endif
#define RG (LS / KL)

/* GPU: a work-group of LS work-items computes RG x RR output features
 * (rows of w) for up to NB batch items at a time: KL work-items along K
 * each read float4s of RR weight rows (a warp reads 16 consecutive bytes
 * per lane: coalesced), RG groups of them take different rows. The NB
 * input rows go through local memory 4 KL values at a time, read as
 * float4s whatever the input's alignment, so every weight is read once per
 * NB batch items and multiplied from registers NB times. Partial sums are
 * then reduced across the KL lanes in local memory (which the input chunk
 * leaves free: RG <= 4).
 *
 * w holds rows of K4 float4s (K padded with zeros to a multiple of 4). */
__kernel CLNN_WORK_GROUP(LS, 1, 1)
void clnn_gemv_gpu(CLNN_TENSOR(out), CLNN_CTENSOR(x), __global const float4 *w, __global const float *bias,
                   const int K, const int K4, const int n0, const int bn, const int c0, const int bc,
                   const int act, const float alpha, const float beta, const int has_bias)
{
    __local float4 xs[NB * KL];
    CLNN_LOCAL_PTR float *xf = (CLNN_LOCAL_PTR float *)xs;
    const int tid = get_local_id(0);
    const int lane = tid % KL, rg = tid / KL;
    const int first_row = get_group_id(0) * (RG * RR);
    /* rows past the box read the box's last row, and store nothing */
    __global const float4 *wr[RR];
#pragma unroll
    for (int r = 0; r < RR; r++)
        wr[r] = w + (size_t)(c0 + min(first_row + rg * RR + r, bc - 1)) * K4;

    for (int first = n0; first < n0 + bn; first += NB) {
        const int rows = min(NB, n0 + bn - first);
        float acc[RR][NB];
#pragma unroll
        for (int r = 0; r < RR; r++)
#pragma unroll
            for (int n = 0; n < NB; n++)
                acc[r][n] = 0.0f;
        for (int k4 = 0; k4 < K4; k4 += KL) {
            const int kq = k4 + lane;
            /* this chunk's weights, in flight while the inputs are staged */
            float4 wv[RR];
#pragma unroll
            for (int r = 0; r < RR; r++)
                wv[r] = kq < K4 ? wr[r][kq] : CLNN_FLOAT4(0.0f, 0.0f, 0.0f, 0.0f);
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int i = tid; i < NB * 4 * KL; i += LS) {
                const int n = i / (4 * KL), k = 4 * k4 + i % (4 * KL);
                xf[i] = n < rows && k < K ? x[x_off + (first + n) * x_ns + k] : 0.0f;
            }
            barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
            for (int n = 0; n < NB; n++) {
                const float4 xv = xs[n * KL + lane];
#pragma unroll
                for (int r = 0; r < RR; r++)
                    acc[r][n] = fma(wv[r].x, xv.x, fma(wv[r].y, xv.y, fma(wv[r].z, xv.z, fma(wv[r].w, xv.w,
                                                                                             acc[r][n]))));
            }
        }
        /* reduce each row's NB sums across the KL lanes */
#pragma unroll
        for (int r = 0; r < RR; r++) {
            barrier(CLK_LOCAL_MEM_FENCE);
#pragma unroll
            for (int n = 0; n < NB; n++)
                xf[(rg * NB + n) * KL + lane] = acc[r][n];
            barrier(CLK_LOCAL_MEM_FENCE);
            for (int span = KL / 2; span > 0; span >>= 1) {
                for (int i = tid; i < RG * NB * span; i += LS) {
                    const int pair = i / span, l = i % span;
                    xf[pair * KL + l] += xf[pair * KL + l + span];
                }
                barrier(CLK_LOCAL_MEM_FENCE);
            }
            for (int i = tid; i < RG * NB; i += LS) {
                const int g = i / NB, n = i % NB;
                const int m = first_row + g * RR + r;
                if (n < rows && m < bc)
                    out[out_off + (first + n) * out_ns + c0 + m] =
                        clnn_act(xf[i * KL] + (has_bias ? bias[c0 + m] : 0.0f), act, alpha, beta);
            }
        }
    }
}

/* CPU: a work-item per output feature, float8 dot products along K (built
 * from scalar loads, which compilers merge into unaligned vector loads; rows
 * need not be 32-byte aligned). */
__kernel void clnn_gemv_cpu(CLNN_TENSOR(out), CLNN_CTENSOR(x), __global const float *w,
                            __global const float *bias, const int K, const int n0, const int bn,
                            const int c0, const int bc, const int act, const float alpha,
                            const float beta, const int has_bias)
{
    if (get_global_id(0) >= bc)
        return;
    const int m = c0 + get_global_id(0);
    __global const float *row = w + (size_t)m * K;
    const int k8 = K / 8 * 8;
    for (int n = n0; n < n0 + bn; n++) {
        __global const float *xn = x + x_off + n * x_ns;
        float8 s8 = 0.0f;
        for (int k = 0; k < k8; k += 8)
            s8 += CLNN_FLOAT8(row[k], row[k + 1], row[k + 2], row[k + 3], row[k + 4], row[k + 5], row[k + 6],
                              row[k + 7]) *
                  CLNN_FLOAT8(xn[k], xn[k + 1], xn[k + 2], xn[k + 3], xn[k + 4], xn[k + 5], xn[k + 6], xn[k + 7]);
        float s = s8.s0 + s8.s1 + s8.s2 + s8.s3 + s8.s4 + s8.s5 + s8.s6 + s8.s7;
        for (int k = k8; k < K; k++)
            s += row[k] * xn[k];
        out[out_off + n * out_ns + m] = clnn_act(s + (has_bias ? bias[m] : 0.0f), act, alpha, beta);
    }
}

#ifdef MR
/* CPU, a box of at most NB batch items of a Dense layer past the GEMV batch
 * (its part of a batch split), whose weights are packed as the CPU GEMM
 * reads them: panels of MR rows, [panel][k][i], aligned to channel 0. A
 * work-item per panel streams its K x MR weights once for all the box's
 * items, where the GEMM, whose vectors run along the batch, would leave
 * most of their lanes idle. Items past the box repeat its last one and
 * store nothing. Built with MR, the GEMM's panel height, and -cl-mad-enable:
 * PoCL makes fma() a library call (10x slower here), a * b + c contracts. */
__kernel void clnn_gemv_panels_cpu(CLNN_TENSOR(out), CLNN_CTENSOR(x), __global const float *w,
                                   __global const float *bias, const int K, const int n0, const int bn,
                                   const int c0, const int bc, const int act, const float alpha,
                                   const float beta, const int has_bias)
{
    const int first = (c0 / MR + (int)get_global_id(0)) * MR;
    if (first >= c0 + bc)
        return;
    __global const float *panel = w + (size_t)first * K;
    __global const float *xn[NB];
    float acc[NB][MR];
#pragma unroll
    for (int n = 0; n < NB; n++) {
        xn[n] = x + x_off + (n0 + min(n, bn - 1)) * x_ns;
#pragma unroll
        for (int i = 0; i < MR; i++)
            acc[n][i] = 0.0f;
    }
    for (int k = 0; k < K; k++) {
        __global const float *wk = panel + k * MR;
#pragma unroll
        for (int n = 0; n < NB; n++) {
            const float xv = xn[n][k];
#pragma unroll
            for (int i = 0; i < MR; i++)
                acc[n][i] += wk[i] * xv;
        }
    }
    for (int n = 0; n < min(bn, NB); n++)
        for (int i = 0; i < MR; i++) {
            const int m = first + i;
            if (m >= c0 && m < c0 + bc)
                out[out_off + (n0 + n) * out_ns + m] =
                    clnn_act(acc[n][i] + (has_bias ? bias[m] : 0.0f), act, alpha, beta);
        }
}
#endif
