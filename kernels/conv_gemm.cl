/* GEMM kernels for GPUs (tile: gemm_tile.h).
 *
 * clnn_conv_gemm_tiled: convolution (and Dense, a 1x1 convolution over 1x1
 * images) as an implicit GEMM, out[m][p] = sum_k Wt[k][m] im2col[k][p],
 * where m runs over the box's output channels, p over its pixels (batch
 * item, row, column) and k over (input channel, kernel row, kernel column).
 * The im2col matrix is never built: ktab[k] gives the input offset of k's
 * channel and its kernel row and column displacements, so each staged
 * element is a table read, a bounds test and one load. Work-group z is a
 * slice of K, kc deep: with one slice the kernel finishes the output (bias,
 * residual, activation); with several it writes partial sums to
 * part[slice][m][p] and clnn_conv_gemm_reduce finishes them, which keeps
 * every compute unit busy where the output has few tiles (deep layers at
 * batch 1).
 *
 * clnn_gemm_batched: C[t] = A[t]^T B[t] for matrices t = group z, as the
 * Winograd convolution multiplies its transformed tiles (winograd.cl).
 */
#include "gemm_tile.h"

/* One element of the im2col matrix: row k, for the pixel whose batch item
 * starts at ``base`` and whose window's top-left is (ih0, iw0); 0 past the
 * slice's K range, in the padding, and for pixels past the box. */
CLNN_INLINE float clnn_im2col(__global const float *in, __global const int4 *ktab, const int k, const int k_hi,
                              const bool p_ok, const int base, const int ih0, const int iw0, const int H,
                              const int W)
{
    if (!p_ok || k >= k_hi)
        return 0.0f;
    const int4 t = ktab[k];
    const int ih = ih0 + t.y, iw = iw0 + t.z;
    return ih >= 0 && ih < H && iw >= 0 && iw < W ? in[base + t.x + ih * W + iw] : 0.0f;
}

/* clnn_tile_load for B's im2col column: rows k, k + NT / TN, ... */
CLNN_INLINE void clnn_im2col_load(float pb[LB], __global const float *in, __global const int4 *ktab, const int k,
                                  const int k_hi, const bool p_ok, const int base, const int ih0, const int iw0,
                                  const int H, const int W)
{
#pragma unroll
    for (int i = 0; i < LB; i++)
        pb[i] = clnn_im2col(in, ktab, k + i * (NT / TN), k_hi, p_ok, base, ih0, iw0, H, W);
}

__kernel CLNN_WORK_GROUP(WG_N, WG_M, 1)
void clnn_conv_gemm_tiled(CLNN_TENSOR(out), CLNN_CTENSOR(in), __global const float *wt,
                          __global const float *bias, CLNN_CTENSOR(res), __global const int4 *ktab,
                          __global float *part,
                          const int M, const int K, const int H, const int W, const int OW,
                          const int sh, const int sw, const int pt, const int pl,
                          const int n0, const int c0, const int h0, const int bc, const int bh,
                          const int OH, const int P, const int kc, const int act, const float alpha,
                          const float beta, const int has_bias, const int has_res)
{
    CLNN_TILE_START;
    const int slice = get_group_id(2);
    const int k_lo = slice * kc, k_hi = min(K, k_lo + kc);
    const int box_plane = bh * OW;

    /* the weight column and the pixel this work-item stages at every step */
    const int am = tid % TM, ak = tid / TM;
    const bool m_ok = m_tile + am < bc;
    __global const float *wcol = wt + c0 + m_tile + am;
    const int bj = tid % TN, bk = tid / TN;
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

    float acc[RM][RN];
    clnn_tile_zero(acc);

    float pa[LA], pb[LB];
    clnn_tile_load(pa, LA, NT / TM, wcol, M, k_lo + ak, k_hi, m_ok);
    clnn_im2col_load(pb, in, ktab, k_lo + bk, k_hi, p_ok, base, ih0, iw0, H, W);
    int buf = 0;
    for (int k0 = k_lo; k0 < k_hi; k0 += TK) {
        clnn_tile_stage(As[buf], Bs[buf], pa, pb, tid);
        barrier(CLK_LOCAL_MEM_FENCE);
        /* the next step's loads, in flight while this one multiplies */
        const int k1 = k0 + TK;
        if (k1 < k_hi) {
            clnn_tile_load(pa, LA, NT / TM, wcol, M, k1 + ak, k_hi, m_ok);
            clnn_im2col_load(pb, in, ktab, k1 + bk, k_hi, p_ok, base, ih0, iw0, H, W);
        }
        clnn_tile_multiply(As[buf], Bs[buf], acc, tx, ty);
        buf ^= 1;
    }

    const bool finish = get_num_groups(2) == 1;
#pragma unroll
    for (int j = 0; j < RN; j++) {
        const int pp = p_tile + clnn_tile_col(j, tx);
        if (pp >= P)
            continue;
        const int n = n0 + pp / box_plane;
        const int rem = pp % box_plane;
        const int oh = h0 + rem / OW, ow = rem % OW;
#pragma unroll
        for (int i = 0; i < RM; i++) {
            const int m = m_tile + clnn_tile_row(i, ty);
            if (m >= bc)
                continue;
            if (!finish) {
                part[(slice * bc + m) * P + pp] = acc[i][j];
                continue;
            }
            const int c = c0 + m;
            float v = acc[i][j] + (has_bias ? bias[c] : 0.0f);
            if (has_res)
                v += res[CLNN_AT(res, n, c, oh, ow, OH, OW)];
            out[CLNN_AT(out, n, c, oh, ow, OH, OW)] = clnn_act(v, act, alpha, beta);
        }
    }
}

/* Sums the K slices' partial sums of clnn_conv_gemm_tiled and finishes the
 * output: one work-item per output element of the box. */
__kernel void clnn_conv_gemm_reduce(CLNN_TENSOR(out), __global const float *part, __global const float *bias,
                                    CLNN_CTENSOR(res), const int OW, const int OH, const int n0, const int c0,
                                    const int h0, const int bc, const int bh, const int P, const int slices,
                                    const int act, const float alpha, const float beta, const int has_bias,
                                    const int has_res)
{
    const int i = get_global_id(0);
    if (i >= bc * P)
        return;
    const int m = i / P, p = i % P;
    float v = 0.0f;
    for (int s = 0; s < slices; s++)
        v += part[s * bc * P + i];
    const int box_plane = bh * OW;
    const int n = n0 + p / box_plane;
    const int rem = p % box_plane;
    const int oh = h0 + rem / OW, ow = rem % OW;
    const int c = c0 + m;
    v += has_bias ? bias[c] : 0.0f;
    if (has_res)
        v += res[CLNN_AT(res, n, c, oh, ow, OH, OW)];
    out[CLNN_AT(out, n, c, oh, ow, OH, OW)] = clnn_act(v, act, alpha, beta);
}

/* C[t][m][p] = sum_k A[t][k][c0 + m] B[t][k][p] for m < bc, p < P; A's
 * rows are M long, B's and C's ld long (a multiple of 4 >= P: C's rows are
 * stored as float4s, with zeros past P). */
__kernel CLNN_WORK_GROUP(WG_N, WG_M, 1)
void clnn_gemm_batched(__global float *c, __global const float *a, __global const float *b,
                       const int M, const int c0, const int bc, const int K, const int P, const int ld)
{
    CLNN_TILE_START;
    const int t = get_group_id(2);
    /* the host keeps every matrix below 2^31 elements (int offsets take fewer registers) */
    __global const float *at = a + t * K * M;
    __global const float *bt = b + t * K * ld;
    __global float *ct = c + t * bc * ld;

    const int am = tid % TM, ak = tid / TM;
    const bool m_ok = m_tile + am < bc;
    __global const float *acol = at + c0 + m_tile + am;
    const int bj = tid % TN, bk = tid / TN;
    const bool p_ok = p_tile + bj < P;
    __global const float *bcol = bt + p_tile + bj;

    float acc[RM][RN];
    clnn_tile_zero(acc);

    float pa[LA], pb[LB];
    clnn_tile_load(pa, LA, NT / TM, acol, M, ak, K, m_ok);
    clnn_tile_load(pb, LB, NT / TN, bcol, ld, bk, K, p_ok);
    int buf = 0;
    for (int k0 = 0; k0 < K; k0 += TK) {
        clnn_tile_stage(As[buf], Bs[buf], pa, pb, tid);
        barrier(CLK_LOCAL_MEM_FENCE);
        const int k1 = k0 + TK;
        if (k1 < K) {
            clnn_tile_load(pa, LA, NT / TM, acol, M, k1 + ak, K, m_ok);
            clnn_tile_load(pb, LB, NT / TN, bcol, ld, k1 + bk, K, p_ok);
        }
        clnn_tile_multiply(As[buf], Bs[buf], acc, tx, ty);
        buf ^= 1;
    }

#pragma unroll
    for (int i = 0; i < RM; i++) {
        const int m = m_tile + clnn_tile_row(i, ty);
        if (m >= bc)
            continue;
#pragma unroll
        for (int q = 0; q < RN / 4; q++) {
            const int pp = p_tile + clnn_tile_col(4 * q, tx);
            if (pp < P)
                *(__global float4 *)(ct + m * ld + pp) =
                    CLNN_FLOAT4(acc[i][4 * q], acc[i][4 * q + 1], acc[i][4 * q + 2], acc[i][4 * q + 3]);
        }
    }
}
