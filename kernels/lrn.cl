/* Local response normalisation across channels (ONNX semantics):
 * y = x / (bias + alpha / size * sum of x^2 over the size channels around)^beta
 *
 * pow() dominated this kernel on PoCL (about 4x the rest), so the power is
 * exp2 of a log2 (pow's special cases do not arise for this base), or for
 * beta = 0.75 (AlexNet's, built in with -DCLNN_LRN_BETA_3_4) two square
 * roots, twice as fast again. The window size may be built in too
 * (-DCLNN_LRN_SIZE), so its loop unrolls. */
#include "clnn_common.h"

#ifndef CLNN_LRN_SIZE
#define CLNN_LRN_SIZE size
#endif

__kernel void clnn_lrn_channels(CLNN_TENSOR(out), CLNN_CTENSOR(in), const int C, const int size,
                                const float alpha, const float beta, const float bias,
                                const int H, const int W,
                                const int n0, const int c0, const int h0, const int bc, const int bh,
                                const int bn)
{
    CLNN_GRID_ELEMENT(w, h, W, n0, c0, h0, bc, bh, bn);
    const int lo = max(c - (CLNN_LRN_SIZE - 1) / 2, 0);
    const int hi = min(c + CLNN_LRN_SIZE / 2, C - 1);
    float sq = 0.0f;
    for (int k = lo; k <= hi; k++) {
        const float v = in[CLNN_AT(in, n, k, h, w, H, W)];
        sq += v * v;
    }
    const float x = in[CLNN_AT(in, n, c, h, w, H, W)];
    const float base = bias + alpha / size * sq;
#ifdef CLNN_LRN_BETA_3_4
    const float root = sqrt(base);
    out[CLNN_AT(out, n, c, h, w, H, W)] = x / (root * sqrt(root));
#else
    out[CLNN_AT(out, n, c, h, w, H, W)] = x * exp2(-beta * log2(base));
#endif
}
