/* Grouped and depthwise convolution, one output element per work-item:
 * every output channel reads only the input channels of its group, which
 * makes a GEMM tile mostly zeros, so a direct loop serves these better. */
#include "clnn_common.h"

__kernel void clnn_conv_direct(CLNN_TENSOR(out), CLNN_CTENSOR(in), __global const float *w,
                               __global const float *bias, CLNN_CTENSOR(res),
                               const int M, const int cin_g, const int H, const int W,
                               const int OH, const int OW, const int KH, const int KW,
                               const int sh, const int sw, const int dh, const int dw,
                               const int pt, const int pl, const int m_per_group,
                               const int n0, const int c0, const int h0, const int bc, const int bh,
                               const int bn, const int act, const float alpha, const float beta,
                               const int has_bias, const int has_res)
{
    CLNN_GRID_ELEMENT(ow, oh, OW, n0, c0, h0, bc, bh, bn);
    const int ci0 = (c / m_per_group) * cin_g;
    const int ih0 = oh * sh - pt, iw0 = ow * sw - pl;
    float sum = has_bias ? bias[c] : 0.0f;
    for (int ci = 0; ci < cin_g; ci++) {
        __global const float *wc = w + (c * cin_g + ci) * KH * KW;
        for (int kh = 0; kh < KH; kh++) {
            const int ih = ih0 + kh * dh;
            if (ih < 0 || ih >= H)
                continue;
            for (int kw = 0; kw < KW; kw++) {
                const int iw = iw0 + kw * dw;
                if (iw >= 0 && iw < W)
                    sum = fma(wc[kh * KW + kw], in[CLNN_AT(in, n, ci0 + ci, ih, iw, H, W)], sum);
            }
        }
    }
    if (has_res)
        sum += res[CLNN_AT(res, n, c, oh, ow, OH, OW)];
    out[CLNN_AT(out, n, c, oh, ow, OH, OW)] = clnn_act(sum, act, alpha, beta);
}
