/* Transposed convolution: every output element gathers the input elements
 * whose scatter reaches it. Input row ih reaches output row oh through
 * kernel row kh where ih * sh = oh + pt - kh * dh, so only taps with that
 * difference divisible by the stride count.
 *
 * A work-item computes a block of CB output channels of one pixel (a block
 * lies in one group: the host sets CB to 1 where groups are smaller), so
 * each input value it reads serves CB of them. Weights are packed (M / CB,
 * KH, KW, cin_g, CB), zero-padded to whole blocks: a tap's weights for one
 * input channel are contiguous. Dimension 1 of the launch enumerates the
 * blocks that overlap the box's channels x its rows; channels of a block
 * outside the box are computed but not stored. */
#include "clnn_common.h"

#ifndef CB
#define CB 1
#endif

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
    const int ow = get_global_id(0), cr = get_global_id(1), nn = get_global_id(2);
    const int first = c0 / CB, blocks = (c0 + bc + CB - 1) / CB - first;
    if (ow >= OW || cr >= blocks * bh || nn >= bn)
        return;
    const int c = (first + cr % blocks) * CB;     /* the block's first channel */
    const int oh = h0 + cr / blocks, n = n0 + nn;
    const int ci0 = (c / m_per_group) * cin_g;
    float sum[CB];
    for (int j = 0; j < CB; j++)
        sum[j] = 0.0f;
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
            __global const float *tap = w + (((c / CB) * KH + kh) * KW + kw) * cin_g * CB;
            __global const float *x = in + CLNN_AT(in, n, ci0, ih, iw, H, W);
            for (int ci = 0; ci < cin_g; ci++) {
                const float v = x[ci * H * W];
                for (int j = 0; j < CB; j++)
                    sum[j] += tap[ci * CB + j] * v;
            }
        }
    }
    for (int j = 0; j < CB; j++)
        if (c + j >= c0 && c + j < c0 + bc)
            out[CLNN_AT(out, n, c + j, oh, ow, OH, OW)] =
                clnn_act(sum[j] + (has_bias ? bias[c + j] : 0.0f), act, alpha, beta);
}
