/* Softmax and LogSoftmax along any axes: each group (clnn_rows.h) is
 * normalised by its max and its sum of exponentials. Softmax writes each
 * exponential while summing and divides it in place after, so that exp
 * (a call on PoCL, not inlined) runs once per element. */
#include "clnn_rows.h"

/* The sum of a work-item's share of exp(x - top), written to y unless
 * log_out (LogSoftmax needs only the sum). */
CLNN_INLINE float clnn_softmax_exps(__global float *y, __global const float *x, const clnn_loops *l,
                                    const int log_out, const float top, const int first, const int last,
                                    const int step)
{
    if (log_out)
        return clnn_rows_part(x, l, CLNN_TERM_EXP, CLNN_COMB_ADD, top, first, last, step);
    float sum = 0.0f;
    CLNN_ROWS_FOR(l, i0, i1, i2, first, last, step) {
        const float e = exp(x[i0 * l->s0 + i1 * l->s1 + i2 * l->s2] - top);
        y[i0 * l->t0 + i1 * l->t1 + i2 * l->t2] = e;
        sum += e;
    }
    return sum;
}

CLNN_INLINE void clnn_softmax_write(__global float *y, __global const float *x, const clnn_loops *l,
                                    const int log_out, const float top, const float sum, const int first,
                                    const int last, const int step)
{
    const float shift = top + log(sum);
    CLNN_ROWS_FOR(l, i0, i1, i2, first, last, step) {
        __global float *at = y + i0 * l->t0 + i1 * l->t1 + i2 * l->t2;
        *at = log_out ? x[i0 * l->s0 + i1 * l->s1 + i2 * l->s2] - shift : *at / sum;
    }
}

/* One work-item per group: for many small groups. */
__kernel void clnn_softmax_items(CLNN_TENSOR(out), CLNN_CTENSOR(in), __global const int *rows, const int log_out,
                                 const int C, const int H, const int W,
                                 const int n0, const int c0, const int h0, const int bc, const int bh,
                                 const int count)
{
    CLNN_ROWS_ITEMS_START(out_ns);
    __global float *y = out + out_off + item + batch * out_ns;
    const float top = clnn_rows_part(x, &l, CLNN_TERM_X, CLNN_COMB_MAX, 0.0f, 0, l.n2, 1);
    const float sum = clnn_softmax_exps(y, x, &l, log_out, top, 0, l.n2, 1);
    clnn_softmax_write(y, x, &l, log_out, top, sum, 0, l.n2, 1);
}

/* One work-group per group: for few large groups. */
__kernel CLNN_WORK_GROUP(CLNN_ROWS_WG, 1, 1)
void clnn_softmax_groups(CLNN_TENSOR(out), CLNN_CTENSOR(in), __global const int *rows, const int log_out,
                         const int C, const int H, const int W,
                         const int n0, const int c0, const int h0, const int bc, const int bh,
                         const int interleave)
{
    CLNN_ROWS_GROUPS_START(out_ns);
    __global float *y = out + out_off + item + batch * out_ns;
    const float top = clnn_group_combine(
        part, clnn_rows_part(x, &l, CLNN_TERM_X, CLNN_COMB_MAX, 0.0f, first, last, step), CLNN_COMB_MAX);
    const float sum = clnn_group_combine(part, clnn_softmax_exps(y, x, &l, log_out, top, first, last, step),
                                         CLNN_COMB_ADD);
    clnn_softmax_write(y, x, &l, log_out, top, sum, first, last, step);
}
