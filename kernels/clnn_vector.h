/* SIMD vectors for the CPU kernels: floatv holds VW floats, the vector
 * width the host picked for the device (-DVW=8 for AVX2, 16 for AVX-512;
 * CUDA builds take 8).
 *
 * CLNN_LOADV / CLNN_STOREV move a floatv from or to any float of global
 * memory: a vector type with float alignment makes LLVM emit one unaligned
 * vector move, where vloadn/vstoren are calls in older PoCLs.
 * CLNN_LOADPV / CLNN_STOREPV do the same on private memory.
 * CLNN_EVEN_LANES(a, b) is the floatv of the even lanes of a, then of b;
 * CLNN_ODD_LANES(a, b) of the odd ones.
 * clnn_actv applies a fused activation to every lane, clnn_maxv takes the
 * larger of two lanes or the NaN among them. clnn_finish_store ends the CPU
 * convolutions: bias, residual, activation and the store of VW outputs. */
#ifndef VW
#define VW 8
#endif

#if VW == 16
#define floatv float16
#elif VW == 8
#define floatv float8
#else
#error "VW must be 8 or 16"
#endif

#ifdef CLNN_CUDA
#if VW != 8
#error "CUDA builds of the CPU kernels take VW=8"
#endif
__device__ inline float8 clnn_loadv(const float *p)
{
    return float8(p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]);
}
__device__ inline void clnn_storev(float *p, const float8 v)
{
    const float *s = (const float *)&v;
    for (int i = 0; i < 8; i++)
        p[i] = s[i];
}
#define CLNN_LOADV(p) clnn_loadv(p)
#define CLNN_STOREV(p, v) clnn_storev(p, v)
#define CLNN_LOADPV(p) clnn_loadv(p)
#define CLNN_STOREPV(p, v) clnn_storev(p, v)
#define CLNN_EVEN_LANES(a, b) float8((a).s0, (a).s2, (a).s4, (a).s6, (b).s0, (b).s2, (b).s4, (b).s6)
#define CLNN_ODD_LANES(a, b) float8((a).s1, (a).s3, (a).s5, (a).s7, (b).s1, (b).s3, (b).s5, (b).s7)

__device__ inline float8 clnn_maxv(float8 a, const float8 b)
{
    float *s = (float *)&a;
    const float *t = (const float *)&b;
    for (int i = 0; i < 8; i++)
        s[i] = t[i] > s[i] || t[i] != t[i] ? t[i] : s[i];
    return a;
}

__device__ inline float8 clnn_actv(float8 x, const int act, const float alpha, const float beta)
{
    float *s = (float *)&x;
    for (int i = 0; i < 8; i++)
        s[i] = clnn_act(s[i], act, alpha, beta);
    return x;
}
#else
typedef float clnn_floatvu __attribute__((ext_vector_type(VW), aligned(4)));
#define CLNN_LOADV(p) (*(__global const clnn_floatvu *)(p))
#define CLNN_STOREV(p, v) (*(__global clnn_floatvu *)(p) = (v))
#define CLNN_LOADPV(p) (*(const clnn_floatvu *)(p))
#define CLNN_STOREPV(p, v) (*(clnn_floatvu *)(p) = (v))
#define CLNN_EVEN_LANES(a, b) ((floatv)((a).even, (b).even))
#define CLNN_ODD_LANES(a, b) ((floatv)((a).odd, (b).odd))

/* max that passes NaN on, like clnn_pool_box's */
CLNN_INLINE floatv clnn_maxv(const floatv a, const floatv b)
{
    return b > a || b != b ? b : a;
}

CLNN_INLINE floatv clnn_actv(floatv x, const int act, const float alpha, const float beta)
{
    const floatv zero = 0.0f;
    switch (act) {
    case CLNN_ACT_RELU: return x < zero ? zero : x;
    case CLNN_ACT_LEAKY: return x >= zero ? x : alpha * x;
    case CLNN_ACT_CLIP: x = x < (floatv)alpha ? (floatv)alpha : x; return x > (floatv)beta ? (floatv)beta : x;
    case CLNN_ACT_NONE: return x;
    default: {
        float *s = (float *)&x;
        for (int i = 0; i < VW; i++)
            s[i] = clnn_act(s[i], act, alpha, beta);
        return x;
    }
    }
}
#endif

/* The epilogue of the CPU convolutions. clnn_finishv: the sums v of VW
 * outputs of one channel plus its bias, plus the residual res[0..VW) where
 * res is not null, through the fused activation. clnn_finish_store: the
 * same for the sums s[0..n) (n <= VW), stored at out[0..n): a whole vector
 * as one vector store, a shorter run finished as a vector too (s must hold
 * VW floats; only n of res are read) and stored lane by lane. */
CLNN_INLINE floatv clnn_finishv(floatv v, const float bias, __global const float *res, const int act,
                                const float alpha, const float beta)
{
    v += bias;
    if (res)
        v += CLNN_LOADV(res);
    return clnn_actv(v, act, alpha, beta);
}

CLNN_INLINE void clnn_finish_store(__global float *out, const float *s, const int n, const float bias,
                                   __global const float *res, const int act, const float alpha, const float beta)
{
    if (n == VW) {
        CLNN_STOREV(out, clnn_finishv(CLNN_LOADPV(s), bias, res, act, alpha, beta));
        return;
    }
    floatv v = CLNN_LOADPV(s);
    float *t = (float *)&v;
    v += bias;
    if (res) {
        for (int j = 0; j < n; j++)
            t[j] += res[j];
    }
    v = clnn_actv(v, act, alpha, beta);
    for (int j = 0; j < n; j++)
        out[j] = t[j];
}
