/* Reductions along any axes (ReduceSum, ReduceMean, ReduceMax, ...): each
 * output element is a group of input elements (clnn_rows.h). The host
 * spells the op as the term each element adds (x, |x|, x^2, exp(x - max)),
 * how terms combine, and what is done with the total (post). */
#include "clnn_rows.h"

#define CLNN_POST_NONE 0
#define CLNN_POST_MEAN 1
#define CLNN_POST_SQRT 2
#define CLNN_POST_LOG 3
#define CLNN_POST_LOG_PLUS_MAX 4   /* log-sum-exp: terms are exp(x - max) */

CLNN_INLINE float clnn_reduce_post(const float total, const int post, const float top, const int size)
{
    switch (post) {
    case CLNN_POST_MEAN: return total / (float)size;
    case CLNN_POST_SQRT: return sqrt(total);
    case CLNN_POST_LOG: return log(total);
    case CLNN_POST_LOG_PLUS_MAX: return top + log(total);
    default: return total;
    }
}

/* clnn_rows_part with literal term and comb, so that each loop specialises. */
CLNN_INLINE float clnn_reduce_part(__global const float *x, const clnn_loops *l, const int term, const int comb,
                                   const float a, const int first, const int last, const int step)
{
    switch (comb) {
    case CLNN_COMB_MAX: return clnn_rows_part(x, l, CLNN_TERM_X, CLNN_COMB_MAX, a, first, last, step);
    case CLNN_COMB_MIN: return clnn_rows_part(x, l, CLNN_TERM_X, CLNN_COMB_MIN, a, first, last, step);
    case CLNN_COMB_MUL: return clnn_rows_part(x, l, CLNN_TERM_X, CLNN_COMB_MUL, a, first, last, step);
    }
    switch (term) {
    case CLNN_TERM_ABS: return clnn_rows_part(x, l, CLNN_TERM_ABS, CLNN_COMB_ADD, a, first, last, step);
    case CLNN_TERM_SQUARE: return clnn_rows_part(x, l, CLNN_TERM_SQUARE, CLNN_COMB_ADD, a, first, last, step);
    case CLNN_TERM_EXP: return clnn_rows_part(x, l, CLNN_TERM_EXP, CLNN_COMB_ADD, a, first, last, step);
    default: return clnn_rows_part(x, l, CLNN_TERM_X, CLNN_COMB_ADD, a, first, last, step);
    }
}

/* One work-item per output element: for many small groups. */
__kernel void clnn_reduce_items(CLNN_TENSOR(out), CLNN_CTENSOR(in), __global const int *rows, const int term,
                                const int comb, const int post, const int C, const int H, const int W,
                                const int n0, const int c0, const int h0, const int bc, const int bh,
                                const int count)
{
    CLNN_ROWS_ITEMS_START(0);
    const float top = post == CLNN_POST_LOG_PLUS_MAX
                    ? clnn_rows_part(x, &l, CLNN_TERM_X, CLNN_COMB_MAX, 0.0f, 0, l.n2, 1) : 0.0f;
    const float total = clnn_reduce_part(x, &l, term, comb, top, 0, l.n2, 1);
    out[out_off + n * out_ns + e] = clnn_reduce_post(total, post, top, l.size);
}

/* One work-group per output element: for few large groups. */
__kernel CLNN_WORK_GROUP(CLNN_ROWS_WG, 1, 1)
void clnn_reduce_groups(CLNN_TENSOR(out), CLNN_CTENSOR(in), __global const int *rows, const int term,
                        const int comb, const int post, const int C, const int H, const int W,
                        const int n0, const int c0, const int h0, const int bc, const int bh,
                        const int interleave)
{
    CLNN_ROWS_GROUPS_START(0);
    float top = 0.0f;
    if (post == CLNN_POST_LOG_PLUS_MAX)
        top = clnn_group_combine(part, clnn_rows_part(x, &l, CLNN_TERM_X, CLNN_COMB_MAX, 0.0f, first, last, step),
                                 CLNN_COMB_MAX);
    const float total = clnn_group_combine(part, clnn_reduce_part(x, &l, term, comb, top, first, last, step), comb);
    if (t == 0)
        out[out_off + n * out_ns + e] = clnn_reduce_post(total, post, top, l.size);
}
