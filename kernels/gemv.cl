/* Dense layers at small batch: out[n][m] = act(sum_k w[m][k] x[n][k] + b[m]).
 * Their cost is reading the weights once, so these kernels stream each row
 * of w once for every batch item of the box, with no tiling to waste. */
#include "clnn_common.h"

#ifndef LS
#define LS 128
#endif
#ifndef NB
#define NB 16
#endif

/* GPU: a work-group of LS work-items per output feature reads its weight row
 * coalesced once for up to NB batch items, then reduces in local memory. */
__kernel CLNN_WORK_GROUP(LS, 1, 1)
void clnn_gemv_gpu(CLNN_TENSOR(out), CLNN_CTENSOR(x), __global const float *w,
                   __global const float *bias, const int K, const int n0, const int bn,
                   const int c0, const int bc, const int act, const float alpha, const float beta,
                   const int has_bias)
{
    __local float part[NB][LS];
    const int lid = get_local_id(0);
    const int m = c0 + get_group_id(0);
    __global const float *row = w + (size_t)m * K;
    for (int first = n0; first < n0 + bn; first += NB) {
        const int rows = min(NB, n0 + bn - first);
        float s[NB];
        for (int j = 0; j < NB; j++)
            s[j] = 0.0f;
        for (int k = lid; k < K; k += LS) {
            const float wk = row[k];
            for (int j = 0; j < rows; j++)
                s[j] += wk * x[x_off + (first + j) * x_ns + k];
        }
        for (int j = 0; j < NB; j++)
            part[j][lid] = s[j];
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int span = LS / 2; span > 0; span >>= 1) {
            if (lid < span)
                for (int j = 0; j < rows; j++)
                    part[j][lid] += part[j][lid + span];
            barrier(CLK_LOCAL_MEM_FENCE);
        }
        if (lid < rows)
            out[out_off + (first + lid) * out_ns + m] =
                clnn_act(part[lid][0] + (has_bias ? bias[m] : 0.0f), act, alpha, beta);
        barrier(CLK_LOCAL_MEM_FENCE);
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
