/* Shared by every clnn kernel.
 *
 * Tensors are NCHW float32. A tensor argument is a buffer plus two ints:
 * the element offset of its first item and its batch stride. That covers a
 * whole tensor (offset 0, stride C*H*W), a channel slice of a bigger one
 * that a Concat writes into (offset c0*H*W, stride Ctotal*H*W) and a batch
 * broadcast (stride 0).
 *
 * Every kernel computes one box of its output: batch items n0.., channels
 * c0.., rows h0.., all columns; the host passes the box's origin and extent.
 */
#define CLNN_TENSOR(name) __global float *name, const int name##_off, const int name##_ns
#define CLNN_CTENSOR(name) __global const float *name, const int name##_off, const int name##_ns
#define CLNN_AT(name, n, c, h, w, H, W) (name##_off + (n) * name##_ns + ((c) * (H) + (h)) * (W) + (w))

/* Declares n, c, h, w: the element of a box that flat work-item i computes;
 * the box starts at (n0, c0, h0) and spans bc channels of bh rows of W. */
#define CLNN_BOX_ELEMENT(i, W, n0, c0, h0, bc, bh) \
    const int w = (i) % (W); \
    const int h = (h0) + (i) / (W) % (bh); \
    const int c = (c0) + (i) / ((W) * (bh)) % (bc); \
    const int n = (n0) + (i) / ((W) * (bh) * (bc))

/* Declares n, c and the output column and row (named by the caller) that a
 * work-item of a 3-D launch over (columns, channels x rows, batch) computes
 * (clnn.ops.base.grid_launch); returns from work-items past the box. */
#define CLNN_GRID_ELEMENT(col, row, W, n0, c0, h0, bc, bh, bn) \
    const int col = get_global_id(0); \
    const int clnn_cr = get_global_id(1); \
    const int clnn_nn = get_global_id(2); \
    if (col >= (W) || clnn_cr >= (bc) * (bh) || clnn_nn >= (bn)) \
        return; \
    const int c = (c0) + clnn_cr % (bc); \
    const int row = (h0) + clnn_cr / (bc); \
    const int n = (n0) + clnn_nn

/* The few things OpenCL C and CUDA spell differently, as kernels use them.
 * kernels/clnn_cuda.h defines them for CUDA (and CLNN_CUDA) before this file. */
#ifndef CLNN_CUDA
#define CLNN_LOCAL_PTR __local                     /* pointer into local memory */
#define CLNN_WORK_GROUP(x, y, z) __attribute__((reqd_work_group_size(x, y, z)))
#define CLNN_FLOAT8(a, b, c, d, e, f, g, h) ((float8)(a, b, c, d, e, f, g, h))
#define CLNN_FLOAT4(a, b, c, d) ((float4)(a, b, c, d))
#define CLNN_INLINE inline
#endif

/* Fused activations, picked per layer by an int argument. NaN passes
 * through every one of them, as in onnxruntime. */
#define CLNN_ACT_NONE 0
#define CLNN_ACT_RELU 1
#define CLNN_ACT_LEAKY 2   /* alpha: negative slope */
#define CLNN_ACT_CLIP 3    /* alpha, beta: bounds (ReLU6 is 0, 6) */
#define CLNN_ACT_SIGMOID 4
#define CLNN_ACT_TANH 5

CLNN_INLINE float clnn_act(float x, const int act, const float alpha, const float beta)
{
    switch (act) {
    case CLNN_ACT_RELU: return x < 0.0f ? 0.0f : x;
    case CLNN_ACT_LEAKY: return x >= 0.0f ? x : alpha * x;
    case CLNN_ACT_CLIP: return x < alpha ? alpha : (x > beta ? beta : x);
    case CLNN_ACT_SIGMOID: return 1.0f / (1.0f + exp(-x));
    case CLNN_ACT_TANH: return tanh(x);
    default: return x;
    }
}
