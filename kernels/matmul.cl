/* Batched matrix products: out[n][b][r][m] = act(scale * sum_k A[n][b][r][k]
 * * B[n][b][k][m] + bias[m]), for n a batch item, b an inner batch index
 * (the output's dims between the batch and the last two, flattened), r a
 * row and m a column.
 *
 * Each operand (and the output) comes with element strides for its
 * indices; a stride of -1 stands for that tensor's batch stride (x_ns),
 * which only the executor knows: that is how a transposed 2-D operand (its
 * storage batch runs along k), a 2-D output (its rows are its batch items)
 * and a broadcast operand (stride 0) are addressed.
 *
 * A work-item computes RT rows x RM columns of one matrix, reusing each A
 * value for RM columns and each B value for RT rows. Its columns are
 * interleaved with its neighbours' (tx, tx + gx, tx + 2 gx, ... for gx
 * work-items along dimension 0), so that neighbours read neighbouring B
 * elements: vector loads where PoCL vectorises across work-items, coalesced
 * ones on a GPU. Dimension 2 of the launch
 * enumerates the matrices of the box (batch items, then up to three inner
 * levels: the box's channels and rows where the output's storage puts
 * inner batch dims there, then whole matrices inside a row); dimensions 0
 * and 1 tile its columns m0.. and rows r0.. */
#include "clnn_common.h"

#ifndef RT
#define RT 4
#endif
#ifndef RM
#define RM 4
#endif
#define CLNN_STRIDE(s, ns) ((s) < 0 ? (ns) : (s))

__kernel void clnn_matmul_tiled(CLNN_TENSOR(out), CLNN_CTENSOR(a), CLNN_CTENSOR(b), __global const float *bias,
                                const int K, const int o_sn, const int o_sb, const int o_sr,
                                const int a_sn, const int a_sb, const int a_sr, const int a_sk,
                                const int b_sn, const int b_sb, const int b_sk, const int b_sm,
                                const int n0, const int bn, const int e1, const int o1, const int e2,
                                const int o2, const int Y, const int Z, const int r0, const int nr,
                                const int m0, const int nm, const float scale, const int has_bias,
                                const int act, const float alpha, const float beta)
{
    const int tx = get_global_id(0), ty = get_global_id(1), gx = get_global_size(0);
    int q = get_global_id(2);
    if (tx >= nm || ty * RT >= nr || q >= bn * e1 * e2 * Z)
        return;
    const int i3 = q % Z;
    q /= Z;
    const int i2 = q % e2;
    q /= e2;
    const int n = n0 + q / e1;
    const int bi = ((o1 + q % e1) * Y + o2 + i2) * Z + i3;

    const int ak = CLNN_STRIDE(a_sk, a_ns), bk = CLNN_STRIDE(b_sk, b_ns);
    const int ar = CLNN_STRIDE(a_sr, a_ns), bm = CLNN_STRIDE(b_sm, b_ns);
    __global const float *abase = a + a_off + n * CLNN_STRIDE(a_sn, a_ns) + bi * CLNN_STRIDE(a_sb, a_ns);
    __global const float *bbase = b + b_off + n * CLNN_STRIDE(b_sn, b_ns) + bi * CLNN_STRIDE(b_sb, b_ns);
    /* rows and columns past the box read the last ones (never stored) */
    int arow[RT], bcol[RM];
    for (int i = 0; i < RT; i++)
        arow[i] = (r0 + min(ty * RT + i, nr - 1)) * ar;
    for (int j = 0; j < RM; j++)
        bcol[j] = (m0 + min(j * gx + tx, nm - 1)) * bm;

    float acc[RT][RM];
    for (int i = 0; i < RT; i++)
        for (int j = 0; j < RM; j++)
            acc[i][j] = 0.0f;
    for (int k = 0; k < K; k++) {
        float av[RT], bv[RM];
        for (int i = 0; i < RT; i++)
            av[i] = abase[arow[i] + k * ak];
        for (int j = 0; j < RM; j++)
            bv[j] = bbase[k * bk + bcol[j]];
        for (int i = 0; i < RT; i++)
            for (int j = 0; j < RM; j++)
                acc[i][j] += av[i] * bv[j];
    }

    const int os = CLNN_STRIDE(o_sr, out_ns);
    __global float *obase = out + out_off + n * CLNN_STRIDE(o_sn, out_ns) + bi * o_sb;
    for (int i = 0; i < RT; i++) {
        const int r = ty * RT + i;
        for (int j = 0; j < RM; j++) {
            const int m = m0 + j * gx + tx;
            if (r < nr && j * gx + tx < nm)
                obase[(r0 + r) * os + m] = clnn_act(acc[i][j] * scale + (has_bias ? bias[m] : 0.0f), act, alpha, beta);
        }
    }
}
