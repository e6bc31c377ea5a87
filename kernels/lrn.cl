/* Local response normalisation across channels (ONNX semantics):
 * y = x / (bias + alpha / size * sum of x^2 over the size channels around)^beta */
#include "clnn_common.h"

__kernel void clnn_lrn_channels(CLNN_TENSOR(out), CLNN_CTENSOR(in), const int C, const int size,
                                const float alpha, const float beta, const float bias,
                                const int H, const int W,
                                const int n0, const int c0, const int h0, const int bc, const int bh,
                                const int count)
{
    const int i = get_global_id(0);
    if (i >= count)
        return;
    CLNN_BOX_ELEMENT(i, W, n0, c0, h0, bc, bh);
    const int lo = max(c - (size - 1) / 2, 0);
    const int hi = min(c + size / 2, C - 1);
    float sq = 0.0f;
    for (int k = lo; k <= hi; k++) {
        const float v = in[CLNN_AT(in, n, k, h, w, H, W)];
        sq += v * v;
    }
    const float x = in[CLNN_AT(in, n, c, h, w, H, W)];
    out[CLNN_AT(out, n, c, h, w, H, W)] = x / pow(bias + alpha / size * sq, beta);
}
