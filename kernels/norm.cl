/* LayerNormalization and InstanceNormalization: each group (clnn_rows.h)
 * is normalised by its mean and variance (two passes, so that a large mean
 * costs no precision), then scaled and shifted by per-element constants
 * that the loops' scale steps index. */
#include "clnn_rows.h"

CLNN_INLINE void clnn_norm_write(__global float *y, __global const float *x, const clnn_loops *l,
                                 __global const float *scale, __global const float *bias, const float mean,
                                 const float rstd, const int first, const int last, const int step)
{
    CLNN_ROWS_FOR(l, i0, i1, i2, first, last, step) {
        const int k = i0 * l->k0 + i1 * l->k1 + i2 * l->k2;
        const float v = x[i0 * l->s0 + i1 * l->s1 + i2 * l->s2];
        y[i0 * l->t0 + i1 * l->t1 + i2 * l->t2] = (v - mean) * rstd * scale[k] + bias[k];
    }
}

/* One work-item per group: for many small groups. */
__kernel void clnn_norm_items(CLNN_TENSOR(out), CLNN_CTENSOR(in), __global const int *rows,
                              __global const float *scale, __global const float *bias, const float epsilon,
                              const int C, const int H, const int W,
                              const int n0, const int c0, const int h0, const int bc, const int bh,
                              const int count)
{
    CLNN_ROWS_ITEMS_START(out_ns);
    const float mean = clnn_rows_part(x, &l, CLNN_TERM_X, CLNN_COMB_ADD, 0.0f, 0, l.n2, 1) / (float)l.size;
    const float var = clnn_rows_part(x, &l, CLNN_TERM_SQDEV, CLNN_COMB_ADD, mean, 0, l.n2, 1) / (float)l.size;
    clnn_norm_write(out + out_off + item + batch * out_ns, x, &l, scale + k, bias + k, mean,
                    1.0f / sqrt(var + epsilon), 0, l.n2, 1);
}

/* One work-group per group: for few large groups. */
__kernel CLNN_WORK_GROUP(CLNN_ROWS_WG, 1, 1)
void clnn_norm_groups(CLNN_TENSOR(out), CLNN_CTENSOR(in), __global const int *rows,
                      __global const float *scale, __global const float *bias, const float epsilon,
                      const int C, const int H, const int W,
                      const int n0, const int c0, const int h0, const int bc, const int bh,
                      const int interleave)
{
    CLNN_ROWS_GROUPS_START(out_ns);
    const float mean = clnn_group_combine(
        part, clnn_rows_part(x, &l, CLNN_TERM_X, CLNN_COMB_ADD, 0.0f, first, last, step), CLNN_COMB_ADD)
        / (float)l.size;
    const float var = clnn_group_combine(
        part, clnn_rows_part(x, &l, CLNN_TERM_SQDEV, CLNN_COMB_ADD, mean, first, last, step), CLNN_COMB_ADD)
        / (float)l.size;
    clnn_norm_write(out + out_off + item + batch * out_ns, x, &l, scale + k, bias + k, mean,
                    1.0f / sqrt(var + epsilon), first, last, step);
}
