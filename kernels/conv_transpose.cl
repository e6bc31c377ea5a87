/* Transposed convolution, one output element per work-item: it gathers
 * every input element whose scatter reaches it. Input row ih reaches
 * output row oh through kernel row kh where ih * sh = oh + pt - kh * dh, so
 * only taps with that difference divisible by the stride count. Weights
 * are packed (M, KH, KW, cin_g): the group's input channels of one tap are
 * contiguous. */
#include "clnn_common.h"

__kernel void clnn_conv_transpose_direct(CLNN_TENSOR(out), CLNN_CTENSOR(in), __global const float *w,
                                         __global const float *bias, const int cin_g,
                                         const int m_per_group, const int H, const int W,
                                         const int OH, const int OW, const int KH, const int KW,
                                         const int sh, const int sw, const int dh, const int dw,
                                         const int pt, const int pl,
                                         const int n0, const int c0, const int h0, const int bc,
                                         const int bh, const int bn, const int act, const float alpha,
                                         const float beta, const int has_bias)
{
    CLNN_GRID_ELEMENT(ow, oh, OW, n0, c0, h0, bc, bh, bn);
    const int ci0 = (c / m_per_group) * cin_g;
    float sum = has_bias ? bias[c] : 0.0f;
    for (int kh = 0; kh < KH; kh++) {
        const int th = oh + pt - kh * dh;
        if (th < 0 || th % sh)
            continue;
        const int ih = th / sh;
        if (ih >= H)
            continue;
        for (int kw = 0; kw < KW; kw++) {
            const int tw = ow + pl - kw * dw;
            if (tw < 0 || tw % sw)
                continue;
            const int iw = tw / sw;
            if (iw >= W)
                continue;
            __global const float *tap = w + ((c * KH + kh) * KW + kw) * cin_g;
            for (int ci = 0; ci < cin_g; ci++)
                sum += tap[ci] * in[CLNN_AT(in, n, ci0 + ci, ih, iw, H, W)];
        }
    }
    out[CLNN_AT(out, n, c, oh, ow, OH, OW)] = clnn_act(sum, act, alpha, beta);
}
