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

__kernel void clnn_eltwise_box(CLNN_TENSOR(out), CLNN_CTENSOR(a), CLNN_CTENSOR(b),
                               const int op, const int bmode, const int act,
                               const float alpha, const float beta,
                               const int H, const int W,
                               const int n0, const int c0, const int h0,
                               const int bc, const int bh, const int count)
{
    const int i = get_global_id(0);
    if (i >= count)
        return;
    CLNN_BOX_ELEMENT(i, W, n0, c0, h0, bc, bh);
    const float x = a[CLNN_AT(a, n, c, h, w, H, W)];
    float y = x;
    if (op != OP_NONE) {
        const float v = bmode == B_TENSOR ? b[CLNN_AT(b, n, c, h, w, H, W)]
                      : bmode == B_CHANNEL ? b[b_off + c] : b[b_off];
        y = op == OP_ADD ? x + v : op == OP_SUB ? x - v : op == OP_MUL ? x * v
          : op == OP_DIV ? x / v : op == OP_RSUB ? v - x : v / x;
    }
    out[CLNN_AT(out, n, c, h, w, H, W)] = clnn_act(y, act, alpha, beta);
}

/* Per-channel affine map: out = act(a * scale[c] + shift[c]) (an unfolded
 * BatchNormalization, or input normalisation). */
__kernel void clnn_scale_shift_box(CLNN_TENSOR(out), CLNN_CTENSOR(a), __global const float *scale,
                                   __global const float *shift, const int act, const float alpha,
                                   const float beta, const int H, const int W,
                                   const int n0, const int c0, const int h0,
                                   const int bc, const int bh, const int count)
{
    const int i = get_global_id(0);
    if (i >= count)
        return;
    CLNN_BOX_ELEMENT(i, W, n0, c0, h0, bc, bh);
    const float y = a[CLNN_AT(a, n, c, h, w, H, W)] * scale[c] + shift[c];
    out[CLNN_AT(out, n, c, h, w, H, W)] = clnn_act(y, act, alpha, beta);
}
