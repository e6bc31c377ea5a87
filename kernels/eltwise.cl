/* Elementwise layers: out = act(a OP b) over one box of the output.
 * b is a tensor of a's shape (its batch stride may be 0 to broadcast over
 * the batch), one value per channel, or one scalar. OP_NONE ignores b, which
 * makes standalone activations. */
#include "clnn_common.h"

#define OP_NONE 0
#define OP_ADD 1
#define OP_SUB 2
#define OP_MUL 3
#define OP_DIV 4
#define OP_RSUB 5   /* b - a */
#define OP_RDIV 6   /* b / a */

#define B_TENSOR 0
#define B_CHANNEL 1
#define B_SCALAR 2

/* Declares n, c and ``at``, the offset within its batch item of the box
 * element this work-item computes; returns from work-items past the box.
 * Built with -DCLNN_PLANE_GRID (GPUs, clnn.ops.base.box_launch): a 3-D
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
        y = op == OP_ADD ? x + v : op == OP_SUB ? x - v : op == OP_MUL ? x * v
          : op == OP_DIV ? x / v : op == OP_RSUB ? v - x : v / x;
    }
    out[out_off + n * out_ns + at] = clnn_act(y, act, alpha, beta);
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
