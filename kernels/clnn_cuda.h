/* The OpenCL C that clnn's kernels use, spelled for CUDA.
 *
 * clnn.cuda compiles this file followed by a source of kernels/ with NVRTC,
 * so one source serves both drivers. It is the only file that knows both
 * dialects: clnn_common.h defines the CLNN_* macros for OpenCL only when
 * CLNN_CUDA is not set, and kernels use nothing else that differs.
 */
#define CLNN_CUDA 1

/* Address spaces. Global memory is CUDA's default; __local only ever
 * declares work-group arrays, which are __shared__ arrays. */
#define __kernel extern "C" __global__
#define __global
#define __local __shared__
#define CLNN_LOCAL_PTR
/* reqd_work_group_size has no CUDA twin; launch bounds give the compiler
 * the same register budget, and the host launches exactly that size. */
#define CLNN_WORK_GROUP(x, y, z) __launch_bounds__((x) * (y) * (z))
#define CLNN_INLINE __device__ inline
#define CLNN_NOINLINE __device__ __noinline__
#define CLNN_FLOAT8(a, b, c, d, e, f, g, h) float8(a, b, c, d, e, f, g, h)
/* float4 and int4 are CUDA's own vector types, with OpenCL's .x .y .z .w */
#define CLNN_FLOAT4(a, b, c, d) make_float4(a, b, c, d)

#define CLK_LOCAL_MEM_FENCE 1
#define barrier(flags) __syncthreads()

#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif

/* Work-item functions take the dimension as an argument, as in OpenCL;
 * kernels pass constants, so the choice folds away. */
__device__ inline size_t clnn_dim(int dim, unsigned x, unsigned y, unsigned z)
{
    return dim == 0 ? x : dim == 1 ? y : z;
}
__device__ inline size_t get_local_id(int dim) { return clnn_dim(dim, threadIdx.x, threadIdx.y, threadIdx.z); }
__device__ inline size_t get_group_id(int dim) { return clnn_dim(dim, blockIdx.x, blockIdx.y, blockIdx.z); }
__device__ inline size_t get_local_size(int dim) { return clnn_dim(dim, blockDim.x, blockDim.y, blockDim.z); }
__device__ inline size_t get_num_groups(int dim) { return clnn_dim(dim, gridDim.x, gridDim.y, gridDim.z); }
__device__ inline size_t get_global_id(int dim)
{
    return get_group_id(dim) * get_local_size(dim) + get_local_id(dim);
}
__device__ inline size_t get_global_size(int dim) { return get_num_groups(dim) * get_local_size(dim); }

/* OpenCL's float8, as far as kernels use it. Trivially default-constructible
 * so that it can fill __shared__ arrays; 32-byte aligned like OpenCL's, so
 * that a float8 array viewed as floats has the same layout. */
struct __align__(32) float8 {
    float s0, s1, s2, s3, s4, s5, s6, s7;

    float8() = default;
    __device__ float8(float v) : s0(v), s1(v), s2(v), s3(v), s4(v), s5(v), s6(v), s7(v) {}
    __device__ float8(float a, float b, float c, float d, float e, float f, float g, float h)
        : s0(a), s1(b), s2(c), s3(d), s4(e), s5(f), s6(g), s7(h) {}
};

__device__ inline float8 operator+(const float8 &a, const float8 &b)
{
    return float8(a.s0 + b.s0, a.s1 + b.s1, a.s2 + b.s2, a.s3 + b.s3,
                  a.s4 + b.s4, a.s5 + b.s5, a.s6 + b.s6, a.s7 + b.s7);
}

__device__ inline float8 operator-(const float8 &a, const float8 &b)
{
    return float8(a.s0 - b.s0, a.s1 - b.s1, a.s2 - b.s2, a.s3 - b.s3,
                  a.s4 - b.s4, a.s5 - b.s5, a.s6 - b.s6, a.s7 - b.s7);
}

__device__ inline float8 operator*(const float8 &a, const float8 &b)
{
    return float8(a.s0 * b.s0, a.s1 * b.s1, a.s2 * b.s2, a.s3 * b.s3,
                  a.s4 * b.s4, a.s5 * b.s5, a.s6 * b.s6, a.s7 * b.s7);
}

__device__ inline float8 operator*(float a, const float8 &b) { return float8(a) * b; }

__device__ inline float8 &operator+=(float8 &a, const float8 &b) { return a = a + b; }
