/* Winograd convolution F(m x m, 3 x 3), stride 1, for GPUs: a 3x3 layer as
 * ALPHA^2 = (m + 2)^2 independent GEMMs over transformed tiles, m^2 x 9 /
 * ALPHA^2 fewer multiplications than the direct form (4x for m = 4).
 *
 *   clnn_conv_wino_input:  V[t][c][p] = (B^T d B)[t] for each input channel
 *                          c and tile p (an ALPHA x ALPHA input patch d)
 *   clnn_gemm_batched:     Mo[t] = U[t]^T V[t] (conv_gemm.cl), with
 *                          U[t][c][m] = (G g G^T)[t] made on the host
 *   clnn_conv_wino_output: out = A^T Mo A per tile and output channel, plus
 *                          bias, residual and activation, stored inside the box
 *
 * Tiles lie on a grid fixed to the whole output (tile rows start at
 * multiples of m), so a slice of rows computes its tiles exactly as the
 * whole layer does; a box's tiles span output rows row0 .. row0 + TH m and
 * all columns; p = (batch item of the box, tile row, tile column).
 * Scratch rows are ld (a multiple of 4 >= P) long.
 *
 * Build option: -DWINO_M=4 (F(4x4,3x3), points 0, +-1, +-2) or 2. */
#include "clnn_common.h"

#ifndef WINO_M
#define WINO_M 4
#endif
#define ALPHA (WINO_M + 2)

/* y = B^T x for one row or column of an input patch */
CLNN_INLINE void clnn_wino_bt(const float x[ALPHA], float y[ALPHA])
{
#if WINO_M == 4
    y[0] = 4.0f * x[0] - 5.0f * x[2] + x[4];
    y[1] = -4.0f * (x[1] + x[2]) + x[3] + x[4];
    y[2] = 4.0f * (x[1] - x[2]) - x[3] + x[4];
    y[3] = 2.0f * (x[3] - x[1]) - x[2] + x[4];
    y[4] = 2.0f * (x[1] - x[3]) - x[2] + x[4];
    y[5] = 4.0f * x[1] - 5.0f * x[3] + x[5];
#else
    y[0] = x[0] - x[2];
    y[1] = x[1] + x[2];
    y[2] = x[2] - x[1];
    y[3] = x[1] - x[3];
#endif
}

/* y = A^T x for one row or column of a transformed product */
CLNN_INLINE void clnn_wino_at(const float x[ALPHA], float y[WINO_M])
{
#if WINO_M == 4
    const float s12 = x[1] + x[2], d12 = x[1] - x[2], s34 = x[3] + x[4], d34 = x[3] - x[4];
    y[0] = x[0] + s12 + s34;
    y[1] = d12 + 2.0f * d34;
    y[2] = s12 + 4.0f * s34;
    y[3] = d12 + 8.0f * d34 + x[5];
#else
    y[0] = x[0] + x[1] + x[2];
    y[1] = x[1] - x[2] - x[3];
#endif
}

/* Decodes tile p of a box into its batch item, first output row and column. */
#define CLNN_WINO_TILE(p, n0, row0, TH, TW) \
    const int n = (n0) + (p) / ((TW) * (TH)); \
    const int tile_h = (row0) + (p) / (TW) % (TH) * WINO_M; \
    const int tile_w = (p) % (TW) * WINO_M

/* One work-item per (tile, input channel). */
__kernel void clnn_conv_wino_input(__global float *v, CLNN_CTENSOR(in), const int C, const int H, const int W,
                                   const int pt, const int pl, const int n0, const int row0, const int TH,
                                   const int TW, const int P, const int ld)
{
    const int p = get_global_id(0), c = get_global_id(1);
    if (p >= P || c >= C)
        return;
    CLNN_WINO_TILE(p, n0, row0, TH, TW);
    const int ih0 = tile_h - pt, iw0 = tile_w - pl;
    float d[ALPHA][ALPHA], rows[ALPHA][ALPHA];
#pragma unroll
    for (int i = 0; i < ALPHA; i++) {
        const int ih = ih0 + i;
#pragma unroll
        for (int j = 0; j < ALPHA; j++) {
            const int iw = iw0 + j;
            d[i][j] = ih >= 0 && ih < H && iw >= 0 && iw < W ? in[CLNN_AT(in, n, c, ih, iw, H, W)] : 0.0f;
        }
    }
    /* B^T d: transform the columns, then (B^T d) B: the rows */
#pragma unroll
    for (int j = 0; j < ALPHA; j++) {
        float col[ALPHA], out[ALPHA];
#pragma unroll
        for (int i = 0; i < ALPHA; i++)
            col[i] = d[i][j];
        clnn_wino_bt(col, out);
#pragma unroll
        for (int i = 0; i < ALPHA; i++)
            rows[i][j] = out[i];
    }
#pragma unroll
    for (int i = 0; i < ALPHA; i++) {
        float out[ALPHA];
        clnn_wino_bt(rows[i], out);
#pragma unroll
        for (int j = 0; j < ALPHA; j++)
            v[((i * ALPHA + j) * C + c) * ld + p] = out[j];
    }
}

/* One work-item per (tile, output channel of the box). */
__kernel void clnn_conv_wino_output(CLNN_TENSOR(out), __global const float *mo, __global const float *bias,
                                    CLNN_CTENSOR(res), const int OH, const int OW, const int n0, const int c0,
                                    const int h0, const int bh, const int bc, const int row0, const int TH,
                                    const int TW, const int P, const int ld, const int act, const float alpha,
                                    const float beta, const int has_bias, const int has_res)
{
    const int p = get_global_id(0), m = get_global_id(1);
    if (p >= P || m >= bc)
        return;
    CLNN_WINO_TILE(p, n0, row0, TH, TW);
    float cols[WINO_M][ALPHA];
    /* A^T Mo: transform the columns, then (A^T Mo) A: the rows */
#pragma unroll
    for (int j = 0; j < ALPHA; j++) {
        float col[ALPHA], y[WINO_M];
#pragma unroll
        for (int i = 0; i < ALPHA; i++)
            col[i] = mo[((i * ALPHA + j) * bc + m) * ld + p];
        clnn_wino_at(col, y);
#pragma unroll
        for (int i = 0; i < WINO_M; i++)
            cols[i][j] = y[i];
    }
    const int c = c0 + m;
    const float b = has_bias ? bias[c] : 0.0f;
#pragma unroll
    for (int i = 0; i < WINO_M; i++) {
        const int oh = tile_h + i;
        if (oh < h0 || oh >= h0 + bh)
            continue;
        float y[WINO_M];
        clnn_wino_at(cols[i], y);
#pragma unroll
        for (int j = 0; j < WINO_M; j++) {
            const int ow = tile_w + j;
            if (ow >= OW)
                continue;
            float val = y[j] + b;
            if (has_res)
                val += res[CLNN_AT(res, n, c, oh, ow, OH, OW)];
            out[CLNN_AT(out, n, c, oh, ow, OH, OW)] = clnn_act(val, act, alpha, beta);
        }
    }
}
