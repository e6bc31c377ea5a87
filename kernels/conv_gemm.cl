/* Convolution (and Dense, a 1x1 convolution over 1x1 images) as an implicit
 * GEMM, tuned for GPUs: out[m][p] = sum_k Wt[k][m] * im2col[k][p], where m
 * runs over the box's output channels, p over its pixels (batch item, row,
 * column) and k over (input channel, kernel row, kernel column).
 *
 * A work-group computes a TM x TN tile; each work-item an RM x RN block of
 * it, interleaved so that neighbouring work-items touch neighbouring
 * addresses. Tiles of Wt and of the im2col matrix go through local memory TK
 * rows at a time. The im2col matrix is never built: ktab[k] gives, for
 * every k, the input offset of its channel and the kernel row and column
 * displacements, so each load is a table read, a bounds test and one load.
 *
 * Build options: -DTM -DTN -DTK -DRM -DRN. */
#include "clnn_common.h"

#ifndef TM
#define TM 64
#endif
#ifndef TN
#define TN 64
#endif
#ifndef TK
#define TK 16
#endif
#ifndef RM
#define RM 4
#endif
#ifndef RN
#define RN 4
#endif
#define WG_M (TM / RM)
#define WG_N (TN / RN)
#define NT (WG_M * WG_N)

__kernel CLNN_WORK_GROUP(WG_N, WG_M, 1)
void clnn_conv_gemm_tiled(CLNN_TENSOR(out), CLNN_CTENSOR(in), __global const float *wt,
                          __global const float *bias, CLNN_CTENSOR(res), __global const int4 *ktab,
                          const int M, const int K, const int H, const int W, const int OW,
                          const int sh, const int sw, const int pt, const int pl,
                          const int n0, const int c0, const int h0, const int bc, const int bh,
                          const int OH, const int P, const int act, const float alpha, const float beta,
                          const int has_bias, const int has_res)
{
    __local float As[TK][TM];
    __local float Bs[TK][TN];
    const int tx = get_local_id(0), ty = get_local_id(1);
    const int tid = ty * WG_N + tx;
    const int p_tile = get_group_id(0) * TN;
    const int m_tile = get_group_id(1) * TM;
    const int box_plane = bh * OW;

    /* each work-item loads the same im2col column at every step */
    const int bj = tid % TN;
    const int bk = tid / TN;
    const int p = p_tile + bj;
    const bool p_ok = p < P;
    int base = 0, ih0 = 0, iw0 = 0;
    if (p_ok) {
        const int n = n0 + p / box_plane;
        const int rem = p % box_plane;
        ih0 = (h0 + rem / OW) * sh - pt;
        iw0 = (rem % OW) * sw - pl;
        base = in_off + n * in_ns;
    }
    const int am = tid % TM;
    const int ak = tid / TM;

    float acc[RM][RN];
    for (int i = 0; i < RM; i++)
        for (int j = 0; j < RN; j++)
            acc[i][j] = 0.0f;

    for (int k0 = 0; k0 < K; k0 += TK) {
        for (int kk = ak; kk < TK; kk += NT / TM) {
            const int k = k0 + kk, m = m_tile + am;
            As[kk][am] = (m < bc && k < K) ? wt[k * M + c0 + m] : 0.0f;
        }
        for (int kk = bk; kk < TK; kk += NT / TN) {
            const int k = k0 + kk;
            float v = 0.0f;
            if (p_ok && k < K) {
                const int4 t = ktab[k];
                const int ih = ih0 + t.y, iw = iw0 + t.z;
                if (ih >= 0 && ih < H && iw >= 0 && iw < W)
                    v = in[base + t.x + ih * W + iw];
            }
            Bs[kk][bj] = v;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int kk = 0; kk < TK; kk++) {
            float a[RM], b[RN];
            for (int i = 0; i < RM; i++)
                a[i] = As[kk][ty + i * WG_M];
            for (int j = 0; j < RN; j++)
                b[j] = Bs[kk][tx + j * WG_N];
            for (int i = 0; i < RM; i++)
                for (int j = 0; j < RN; j++)
                    acc[i][j] = fma(a[i], b[j], acc[i][j]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }

#pragma unroll
    for (int j = 0; j < RN; j++) {
        const int pp = p_tile + tx + j * WG_N;
        if (pp >= P)
            continue;
        const int n = n0 + pp / box_plane;
        const int rem = pp % box_plane;
        const int oh = h0 + rem / OW, ow = rem % OW;
        for (int i = 0; i < RM; i++) {
            const int m = m_tile + ty + i * WG_M;
            if (m >= bc)
                continue;
            const int c = c0 + m;
            float v = acc[i][j] + (has_bias ? bias[c] : 0.0f);
            if (has_res)
                v += res[CLNN_AT(res, n, c, oh, ow, OH, OW)];
            out[CLNN_AT(out, n, c, oh, ow, OH, OW)] = clnn_act(v, act, alpha, beta);
        }
    }
}
