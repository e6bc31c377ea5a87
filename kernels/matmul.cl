/* Batched matrix products, one output element per work-item:
 * out[n][b][r][m] = act(scale * sum_k A[n][b][r][k] * B[n][b][k][m] + bias[m]).
 * The output's storage is read as row-major (inner batch b, row r, column
 * m) within each batch item n. Each operand comes with element strides for
 * its four indices; a stride of -1 stands for the operand's batch stride
 * (x_ns), which the host cannot know: that is how a transposed 2-D operand
 * (its storage batch runs along k) and a broadcast one (stride 0) are
 * read. Consecutive work-items take consecutive columns m, so B's rows are
 * read contiguously and A's row is shared. */
#include "clnn_common.h"

#define CLNN_STRIDE(s, ns) ((s) < 0 ? (ns) : (s))

__kernel void clnn_matmul_box(CLNN_TENSOR(out), CLNN_CTENSOR(a), CLNN_CTENSOR(b), __global const float *bias,
                              const int T, const int K, const int M,
                              const int a_sn, const int a_sb, const int a_sr, const int a_sk,
                              const int b_sn, const int b_sb, const int b_sk, const int b_sm,
                              const float scale, const int has_bias, const int act, const float alpha,
                              const float beta, const int H, const int W,
                              const int n0, const int c0, const int h0, const int bc, const int bh,
                              const int count)
{
    const int i = get_global_id(0);
    if (i >= count)
        return;
    CLNN_BOX_ELEMENT(i, W, n0, c0, h0, bc, bh);
    const int f = (c * H + h) * W + w;
    const int m = f % M, row = f / M;
    const int r = row % T, bi = row / T;
    __global const float *ap = a + a_off + n * CLNN_STRIDE(a_sn, a_ns) + bi * CLNN_STRIDE(a_sb, a_ns) +
                               r * CLNN_STRIDE(a_sr, a_ns);
    __global const float *bp = b + b_off + n * CLNN_STRIDE(b_sn, b_ns) + bi * CLNN_STRIDE(b_sb, b_ns) +
                               m * CLNN_STRIDE(b_sm, b_ns);
    const int ak = CLNN_STRIDE(a_sk, a_ns), bk = CLNN_STRIDE(b_sk, b_ns);
    float sum = 0.0f;
    for (int k = 0; k < K; k++)
        sum += ap[k * ak] * bp[k * bk];
    sum *= scale;
    if (has_bias)
        sum += bias[m];
    out[CLNN_AT(out, n, c, h, w, H, W)] = clnn_act(sum, act, alpha, beta);
}
