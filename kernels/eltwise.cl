/* Elementwise layers: out = act(a OP b) over one box of the output.
 *
 * clnn_eltwise_box is the fast path: a has the output's shape (its batch
 * stride may be 0 to broadcast over the batch), b too, or b is one value
 * per channel, or one scalar. OP_NONE ignores b, which makes standalone
 * activations. clnn_eltwise_strided takes any numpy broadcast: each operand
 * is addressed through a stride per dimension of the output (0 where it
 * broadcasts), up to 6 dimensions. */
#include "clnn_common.h"

#define OP_NONE 0
#define OP_ADD 1
#define OP_SUB 2
#define OP_MUL 3
#define OP_DIV 4
#define OP_RSUB 5   /* b - a */
#define OP_RDIV 6   /* b / a */
#define OP_POW 7
#define OP_RPOW 8   /* b ^ a */
#define OP_MAX 9
#define OP_MIN 10
#define OP_PRELU 11 /* b: the slope where a < 0 */

#define B_TENSOR 0
#define B_CHANNEL 1
#define B_SCALAR 2

/* x OP v; Max and Min pass NaN on, as numpy's maximum and minimum do */
CLNN_INLINE float clnn_binary(const int op, const float x, const float v)
{
    switch (op) {
    case OP_ADD: return x + v;
    case OP_SUB: return x - v;
    case OP_MUL: return x * v;
    case OP_DIV: return x / v;
    case OP_RSUB: return v - x;
    case OP_RDIV: return v / x;
    case OP_POW: return pow(x, v);
    case OP_RPOW: return pow(v, x);
    case OP_MAX: return x >= v || x != x ? x : v;
    case OP_MIN: return x <= v || x != x ? x : v;
    case OP_PRELU: return x < 0.0f ? x * v : x;
    default: return x;
    }
}

/* Declares n, c and ``at``, the offset within its batch item of the box
 * element this work-item computes; returns from work-items past the box.
 * Built with -DCLNN_PLANE_GRID (GPUs, clnn.ops.base.plane_launch): a 3-D
 * launch over (the bh x W contiguous elements of a plane of the box, its
 * channels, its batch items), which takes no division; else a flat launch
 * of ``count`` work-items. */
#ifdef CLNN_PLANE_GRID
#define CLNN_BOX_OFFSET(H, W, n0, c0, h0, bc, bh, count) \
    const int clnn_j = get_global_id(0); \
    if (clnn_j >= (bh) * (W) || (int)get_global_id(1) >= (bc)) \
        return; \
    const int n = (n0) + (int)get_global_id(2); \
    const int c = (c0) + (int)get_global_id(1); \
    const int at = (c * (H) + (h0)) * (W) + clnn_j
#else
#define CLNN_BOX_OFFSET(H, W, n0, c0, h0, bc, bh, count) \
    const int clnn_i = get_global_id(0); \
    if (clnn_i >= (count)) \
        return; \
    CLNN_BOX_ELEMENT(clnn_i, W, n0, c0, h0, bc, bh); \
    const int at = (c * (H) + h) * (W) + w
#endif

__kernel void clnn_eltwise_box(CLNN_TENSOR(out), CLNN_CTENSOR(a), CLNN_CTENSOR(b),
                               const int op, const int bmode, const int act,
                               const float alpha, const float beta,
                               const int H, const int W,
                               const int n0, const int c0, const int h0,
                               const int bc, const int bh, const int count)
{
    CLNN_BOX_OFFSET(H, W, n0, c0, h0, bc, bh, count);
    const float x = a[a_off + n * a_ns + at];
    float y = x;
    if (op != OP_NONE) {
        const float v = bmode == B_TENSOR ? b[b_off + n * b_ns + at]
                      : bmode == B_CHANNEL ? b[b_off + c] : b[b_off];
        y = clnn_binary(op, x, v);
    }
    out[out_off + n * out_ns + at] = clnn_act(y, act, alpha, beta);
}

/* The element of operand x (a or b) that output element (n, c, h, i3, i4,
 * i5) reads: x_s0..x_s5 are its strides along the output's six dimensions;
 * its own first dimension, which lies along output dimension x_bd (-1 where
 * it broadcasts), steps by its batch stride x_ns instead. */
#define CLNN_STRIDED_AT(x, n, c, h, i3, i4, i5) \
    (x##_off + (n) * x##_s0 + (c) * x##_s1 + (h) * x##_s2 + (i3) * x##_s3 + (i4) * x##_s4 + (i5) * x##_s5 \
     + x##_ns * (x##_bd == 0 ? (n) : x##_bd == 1 ? (c) : x##_bd == 2 ? (h) \
                 : x##_bd == 3 ? (i3) : x##_bd == 4 ? (i4) : x##_bd == 5 ? (i5) : 0))

/* out = act(a OP b) with a and b broadcast to the output as numpy does. The
 * output's dimensions past the third (D3 x D4 x D5 = W) are split from the
 * column of the 4-D view. */
__kernel void clnn_eltwise_strided(CLNN_TENSOR(out), CLNN_CTENSOR(a), CLNN_CTENSOR(b),
                                   const int op, const int act, const float alpha, const float beta,
                                   const int a_s0, const int a_s1, const int a_s2,
                                   const int a_s3, const int a_s4, const int a_s5, const int a_bd,
                                   const int b_s0, const int b_s1, const int b_s2,
                                   const int b_s3, const int b_s4, const int b_s5, const int b_bd,
                                   const int D4, const int D5, const int H, const int W,
                                   const int n0, const int c0, const int h0,
                                   const int bc, const int bh, const int count)
{
    const int i = get_global_id(0);
    if (i >= count)
        return;
    CLNN_BOX_ELEMENT(i, W, n0, c0, h0, bc, bh);
    const int i5 = w % D5;
    const int i4 = w / D5 % D4;
    const int i3 = w / (D5 * D4);
    const float x = a[CLNN_STRIDED_AT(a, n, c, h, i3, i4, i5)];
    const float v = b[CLNN_STRIDED_AT(b, n, c, h, i3, i4, i5)];
    out[CLNN_AT(out, n, c, h, w, H, W)] = clnn_act(clnn_binary(op, x, v), act, alpha, beta);
}

/* Per-channel affine map: out = act(a * scale[c] + shift[c]) (an unfolded
 * BatchNormalization, or input normalisation). */
__kernel void clnn_scale_shift_box(CLNN_TENSOR(out), CLNN_CTENSOR(a), __global const float *scale,
                                   __global const float *shift, const int act, const float alpha,
                                   const float beta, const int H, const int W,
                                   const int n0, const int c0, const int h0,
                                   const int bc, const int bh, const int count)
{
    CLNN_BOX_OFFSET(H, W, n0, c0, h0, bc, bh, count);
    const float y = a[a_off + n * a_ns + at] * scale[c] + shift[c];
    out[out_off + n * out_ns + at] = clnn_act(y, act, alpha, beta);
}
