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
#define CLNN_NOINLINE __attribute__((noinline))  /* a function kept out of line */
#endif

/* a hint to fetch the cache line at p (it never faults); PoCL's clang turns
 * it into the CPU's prefetch instruction. Simulators, which cannot run it,
 * build with CLNN_NO_PREFETCH (clnn.runtime.opencl), CUDA ignores it. */
#if defined(CLNN_NO_PREFETCH) || defined(CLNN_CUDA)
#define CLNN_PREFETCH(p) ((void)(p))
#else
#define CLNN_PREFETCH(p) __builtin_prefetch(p)
#endif

/* Fused activations, picked per layer by an int argument (the codes of
 * clnn.ops.base.ACTIVATIONS); alpha and beta are their parameters. NaN
 * passes through every one of them (ThresholdedRelu makes it 0), as in
 * onnxruntime. */
#define CLNN_ACT_NONE 0
#define CLNN_ACT_RELU 1
#define CLNN_ACT_LEAKY 2             /* alpha: negative slope */
#define CLNN_ACT_CLIP 3              /* alpha, beta: bounds (ReLU6 is 0, 6); beta wins where alpha > beta */
#define CLNN_ACT_SIGMOID 4
#define CLNN_ACT_TANH 5
#define CLNN_ACT_HARD_SIGMOID 6      /* clamp(alpha * x + beta, 0, 1) */
#define CLNN_ACT_HARD_SWISH 7        /* x * hard_sigmoid(x) with 1/6, 1/2 */
#define CLNN_ACT_SILU 8              /* x * sigmoid(x) */
#define CLNN_ACT_GELU 9              /* x/2 * (1 + erf(x / sqrt 2)) */
#define CLNN_ACT_GELU_TANH 10        /* x/2 * (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
#define CLNN_ACT_ELU 11              /* alpha */
#define CLNN_ACT_SELU 12             /* alpha, beta = gamma */
#define CLNN_ACT_CELU 13             /* alpha */
#define CLNN_ACT_SOFTPLUS 14
#define CLNN_ACT_SOFTSIGN 15
#define CLNN_ACT_MISH 16             /* x * tanh(softplus(x)) */
#define CLNN_ACT_THRESHOLDED_RELU 17 /* alpha: threshold */
#define CLNN_ACT_ERF 18
#define CLNN_ACT_EXP 19
#define CLNN_ACT_LOG 20
#define CLNN_ACT_SQRT 21
#define CLNN_ACT_NEG 22
#define CLNN_ACT_ABS 23
#define CLNN_ACT_RECIPROCAL 24
#define CLNN_ACT_FLOOR 25
#define CLNN_ACT_CEIL 26

/* x clamped to [0, 1], NaN kept */
CLNN_INLINE float clnn_unit(float x)
{
    return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x);
}

/* log(1 + exp(x)) without overflow */
CLNN_INLINE float clnn_softplus(float x)
{
    return (x > 0.0f ? x : 0.0f) + log1p(exp(-fabs(x)));
}

/* The activations that cost a call into the maths library anyway, out of line:
 * inlined, their code in every convolution's epilogue slowed PoCL's
 * convolutions by 10-30% even where they were not used. */
CLNN_NOINLINE float clnn_act_call(float x, const int act, const float alpha, const float beta)
{
    switch (act) {
    case CLNN_ACT_SIGMOID: return 1.0f / (1.0f + exp(-x));
    case CLNN_ACT_TANH: return tanh(x);
    case CLNN_ACT_HARD_SIGMOID: return clnn_unit(alpha * x + beta);
    case CLNN_ACT_HARD_SWISH: return x * clnn_unit(x * (1.0f / 6.0f) + 0.5f);
    case CLNN_ACT_SILU: return x / (1.0f + exp(-x));
    case CLNN_ACT_GELU: return 0.5f * x * (1.0f + erf(x * 0.70710678118654752f));
    /* (1 + tanh(u)) / 2 is sigmoid(2u), which reaches 0 exactly where tanh only nears -1 */
    case CLNN_ACT_GELU_TANH: return x / (1.0f + exp(-1.5957691216057308f * (x + 0.044715f * x * x * x)));
    case CLNN_ACT_ELU: return x > 0.0f ? x : alpha * expm1(x);
    case CLNN_ACT_SELU: return beta * (x > 0.0f ? x : alpha * expm1(x));
    case CLNN_ACT_CELU: return x > 0.0f ? x : alpha * expm1(x / alpha);
    case CLNN_ACT_SOFTPLUS: return clnn_softplus(x);
    case CLNN_ACT_SOFTSIGN: return x / (1.0f + fabs(x));
    case CLNN_ACT_MISH: return x * tanh(clnn_softplus(x));
    case CLNN_ACT_THRESHOLDED_RELU: return x > alpha ? x : 0.0f;
    case CLNN_ACT_ERF: return erf(x);
    case CLNN_ACT_EXP: return exp(x);
    case CLNN_ACT_LOG: return log(x);
    case CLNN_ACT_SQRT: return sqrt(x);
    case CLNN_ACT_NEG: return -x;
    case CLNN_ACT_ABS: return fabs(x);
    case CLNN_ACT_RECIPROCAL: return 1.0f / x;
    case CLNN_ACT_FLOOR: return floor(x);
    case CLNN_ACT_CEIL: return ceil(x);
    default: return x;
    }
}

CLNN_INLINE float clnn_act(float x, const int act, const float alpha, const float beta)
{
    switch (act) {
    case CLNN_ACT_NONE: return x;
    case CLNN_ACT_RELU: return x < 0.0f ? 0.0f : x;
    case CLNN_ACT_LEAKY: return x >= 0.0f ? x : alpha * x;
    case CLNN_ACT_CLIP: x = x < alpha ? alpha : x; return x > beta ? beta : x;
    default: return clnn_act_call(x, act, alpha, beta);
    }
}
