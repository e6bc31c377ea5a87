/* Groups of elements, for the layers that reduce or normalise along axes
 * (clnn.ops.nd.Rows.table). A work-item, or a work-group of CLNN_ROWS_WG
 * work-items, takes one group: its number g comes from a box element as in
 * any kernel, its dims give the group's offsets, and its elements are up
 * to three nested loops. Offsets add an element step and a batch step
 * times the tensor's batch stride. */
#include "clnn_common.h"

#define CLNN_ROWS_WG 64     /* work-group size of the *_groups kernels (clnn.ops.nd.GROUP_SIZE) */

/* Declares n, c, h, w of box element i of a (., C, H, W) tensor, e (its
 * offset in its batch item) and g (its index in the whole tensor). */
#define CLNN_ROWS_ELEMENT(i, C, H, W, n0, c0, h0, bc, bh) \
    CLNN_BOX_ELEMENT(i, W, n0, c0, h0, bc, bh); \
    const int e = ((c) * (H) + (h)) * (W) + (w); \
    const int g = (n) * (C) * (H) * (W) + e

/* What a pass adds up: x, |x|, x^2, exp(x - a) or (x - a)^2 */
#define CLNN_TERM_X 0
#define CLNN_TERM_ABS 1
#define CLNN_TERM_SQUARE 2
#define CLNN_TERM_EXP 3
#define CLNN_TERM_SQDEV 4
/* and how: sum, product, max or min (NaN wins max and min, as in numpy) */
#define CLNN_COMB_ADD 0
#define CLNN_COMB_MUL 1
#define CLNN_COMB_MAX 2
#define CLNN_COMB_MIN 3

typedef struct {
    int n0, n1, n2;     /* extents, outermost first */
    int s0, s1, s2;     /* steps in the input */
    int t0, t1, t2;     /* steps in the output (same shape as the input, its own batch stride) */
    int k0, k1, k2;     /* steps of the scale index */
    int size;           /* elements per group */
} clnn_loops;

/* The element offset, batch index and scale index of group g. */
CLNN_INLINE void clnn_rows_group(__global const int *rows, int g, int *item, int *batch, int *scale)
{
    int e = 0, b = 0, s = 0;
    for (int k = rows[0] - 1; k >= 0; k--) {
        __global const int *d = rows + 1 + 4 * k;
        const int v = g % d[0];
        g /= d[0];
        e += v * d[1];
        b += v * d[2];
        s += v * d[3];
    }
    *item = e;
    *batch = b;
    *scale = s;
}

CLNN_INLINE clnn_loops clnn_rows_loops(__global const int *rows, const int in_ns, const int out_ns)
{
    __global const int *d = rows + 1 + 4 * rows[0];
    clnn_loops l;
    l.n0 = d[0]; l.s0 = d[1] + d[2] * in_ns; l.t0 = d[1] + d[2] * out_ns; l.k0 = d[3];
    l.n1 = d[4]; l.s1 = d[5] + d[6] * in_ns; l.t1 = d[5] + d[6] * out_ns; l.k1 = d[7];
    l.n2 = d[8]; l.s2 = d[9] + d[10] * in_ns; l.t2 = d[9] + d[10] * out_ns; l.k2 = d[11];
    l.size = l.n0 * l.n1 * l.n2;
    return l;
}

/* Loops i0, i1, i2 over a work-item's share of a group: indices first,
 * first + step, ... below last of the innermost loop, all of the others.
 * A work-item alone takes all (0, n2, 1); in a work-group (which takes a
 * group only where that loop is long, see clnn.ops.nd.groups_limits) each
 * takes an interleaved share on a GPU, so that neighbours read neighbours,
 * and a run of its own on a CPU, which walks each work-item's loop whole. */
#define CLNN_ROWS_FOR(l, i0, i1, i2, first, last, step) \
    for (int i0 = 0; i0 < (l)->n0; i0++) \
        for (int i1 = 0; i1 < (l)->n1; i1++) \
            for (int i2 = (first); i2 < (last); i2 += (step))

/* Declares first, last and step of work-item t's share of a work-group's group. */
#define CLNN_ROWS_SHARE(l, t, interleave) \
    const int clnn_run = ((l).n2 + CLNN_ROWS_WG - 1) / CLNN_ROWS_WG; \
    const int first = (interleave) ? (t) : (t) * clnn_run; \
    const int last = (interleave) ? (l).n2 : min((l).n2, first + clnn_run); \
    const int step = (interleave) ? CLNN_ROWS_WG : 1

/* The start of a rows kernel (norm.cl, softmax.cl, reduce.cl: their
 * arguments carry the same names) for group i of its box: declares
 * CLNN_ROWS_ELEMENT's names, the group's item, batch and k (its scale
 * index; clnn_rows_group), its loops l (out_ns: the output's batch stride,
 * 0 where the output is not shaped as the input) and x, its input. */
#define CLNN_ROWS_START(i, out_ns) \
    CLNN_ROWS_ELEMENT(i, C, H, W, n0, c0, h0, bc, bh); \
    int item, batch, k; \
    clnn_rows_group(rows, g, &item, &batch, &k); \
    const clnn_loops l = clnn_rows_loops(rows, in_ns, out_ns); \
    __global const float *x = in + in_off + item + batch * in_ns

/* CLNN_ROWS_START in a *_items kernel: work-item i takes group i, and those
 * past count return. */
#define CLNN_ROWS_ITEMS_START(out_ns) \
    const int i = get_global_id(0); \
    if (i >= count) \
        return; \
    CLNN_ROWS_START(i, out_ns)

/* CLNN_ROWS_START in a *_groups kernel: work-group i takes group i; also
 * declares part (clnn_group_combine's local memory), t (the work-item's
 * local id) and CLNN_ROWS_SHARE's first, last and step. */
#define CLNN_ROWS_GROUPS_START(out_ns) \
    __local float part[CLNN_ROWS_WG]; \
    const int t = get_local_id(0); \
    CLNN_ROWS_START((int)get_group_id(0), out_ns); \
    CLNN_ROWS_SHARE(l, t, interleave)

CLNN_INLINE float clnn_comb_identity(const int comb)
{
    return comb == CLNN_COMB_MUL ? 1.0f : comb == CLNN_COMB_MAX ? -INFINITY : comb == CLNN_COMB_MIN ? INFINITY : 0.0f;
}

CLNN_INLINE float clnn_combine(const float acc, const float v, const int comb)
{
    switch (comb) {
    case CLNN_COMB_MUL: return acc * v;
    case CLNN_COMB_MAX: return v > acc || v != v ? v : acc;
    case CLNN_COMB_MIN: return v < acc || v != v ? v : acc;
    default: return acc + v;
    }
}

/* The combination of the terms of a work-item's share of a group starting
 * at x (callers pass term and comb as literals: the loop specialises). */
CLNN_INLINE float clnn_rows_part(__global const float *x, const clnn_loops *l, const int term, const int comb,
                                 const float a, const int first, const int last, const int step)
{
    float acc = clnn_comb_identity(comb);
    CLNN_ROWS_FOR(l, i0, i1, i2, first, last, step) {
        const float v = x[i0 * l->s0 + i1 * l->s1 + i2 * l->s2];
        const float t = term == CLNN_TERM_ABS ? fabs(v) : term == CLNN_TERM_SQUARE ? v * v
                      : term == CLNN_TERM_EXP ? exp(v - a) : term == CLNN_TERM_SQDEV ? (v - a) * (v - a) : v;
        acc = clnn_combine(acc, t, comb);
    }
    return acc;
}

/* The combination of every work-item's x over the work-group; all get it. */
CLNN_INLINE float clnn_group_combine(CLNN_LOCAL_PTR float *part, const float x, const int comb)
{
    const int t = get_local_id(0);
    part[t] = x;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = CLNN_ROWS_WG / 2; s > 0; s >>= 1) {
        if (t < s)
            part[t] = clnn_combine(part[t], part[t + s], comb);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float found = part[0];
    barrier(CLK_LOCAL_MEM_FENCE);   /* part is free for the next combination */
    return found;
}
