/* The register-blocked tile of clnn's GPU GEMM kernels (conv_gemm.cl).
 *
 * C[m][p] = sum_k A[k][m] B[k][p]. A work-group computes a TM x TN tile of
 * C with (TN / RN) x (TM / RM) work-items; work-item (tx, ty) holds an
 * RM x RN block in registers: rows 4 (ty + q TM/RM) + 0..3 for q < RM / 4,
 * columns 4 (tx + q TN/RN) + 0..3 for q < RN / 4, so that it reads its
 * operands from local memory as float4s and neighbours read neighbours.
 * Tiles of A and B go through local memory TK rows at a time, in two
 * buffers: the next step's global loads are in flight while this step
 * multiplies.
 *
 * Build options: -DTM -DTN -DTK -DRM -DRN (clnn.ops.tuning.GemmTile checks
 * them: RM, RN multiples of 4, the work-group a multiple of TM and TN, and
 * the tiles a multiple of the work-group).
 */
#include "clnn_common.h"

#ifndef TM
#define TM 64
#endif
#ifndef TN
#define TN 64
#endif
#ifndef TK
#define TK 16
#endif
#ifndef RM
#define RM 4
#endif
#ifndef RN
#define RN 4
#endif
#define WG_M (TM / RM)
#define WG_N (TN / RN)
#define NT (WG_M * WG_N)
/* elements of A and of B that each work-item stages per step: A column
 * tid % TM at rows tid / TM + i NT / TM, B column tid % TN likewise */
#define LA (TK * TM / NT)
#define LB (TK * TN / NT)

/* The start of a kernel that computes a tile: declares the tiles of A and
 * B in local memory (two steps' each), the work-item's tx, ty and tid, and
 * the tile's first column p_tile (work-group x) and row m_tile (y). */
#define CLNN_TILE_START \
    __local float4 As[2][TK * TM / 4]; \
    __local float4 Bs[2][TK * TN / 4]; \
    const int tx = get_local_id(0), ty = get_local_id(1); \
    const int tid = ty * WG_N + tx; \
    const int p_tile = get_group_id(0) * TN; \
    const int m_tile = get_group_id(1) * TM

/* acc = 0 */
CLNN_INLINE void clnn_tile_zero(float acc[RM][RN])
{
#pragma unroll
    for (int i = 0; i < RM; i++)
#pragma unroll
        for (int j = 0; j < RN; j++)
            acc[i][j] = 0.0f;
}

/* The n values (LA of A, LB of B) that a work-item stages at a step from a
 * column whose rows lie ld apart: rows k, k + apart, ... (NT / TM for A,
 * NT / TN for B); 0 where !ok and from row k_hi on. */
CLNN_INLINE void clnn_tile_load(float *v, const int n, const int apart, __global const float *col, const int ld,
                                const int k, const int k_hi, const bool ok)
{
#pragma unroll
    for (int i = 0; i < n; i++) {
        const int r = k + i * apart;
        v[i] = ok && r < k_hi ? col[r * ld] : 0.0f;
    }
}

/* Work-item tid's staged values pa, pb written where LA and LB say into
 * one step's tiles of A and B. */
CLNN_INLINE void clnn_tile_stage(CLNN_LOCAL_PTR float4 *As, CLNN_LOCAL_PTR float4 *Bs, const float pa[LA],
                                 const float pb[LB], const int tid)
{
    CLNN_LOCAL_PTR float *as = (CLNN_LOCAL_PTR float *)As;
    CLNN_LOCAL_PTR float *bs = (CLNN_LOCAL_PTR float *)Bs;
#pragma unroll
    for (int i = 0; i < LA; i++)
        as[(tid / TM + i * (NT / TM)) * TM + tid % TM] = pa[i];
#pragma unroll
    for (int i = 0; i < LB; i++)
        bs[(tid / TN + i * (NT / TN)) * TN + tid % TN] = pb[i];
}

/* The n floats of n / 4 float4s that lie apart float4s apart from v. */
CLNN_INLINE void clnn_tile_unpack(float *x, const int n, CLNN_LOCAL_PTR const float4 *v, const int apart)
{
#pragma unroll
    for (int q = 0; q < n / 4; q++) {
        const float4 f = v[q * apart];
        x[4 * q] = f.x;
        x[4 * q + 1] = f.y;
        x[4 * q + 2] = f.z;
        x[4 * q + 3] = f.w;
    }
}

/* acc += the staged A tile (TK x TM, as float4s) times the staged B tile. */
CLNN_INLINE void clnn_tile_multiply(CLNN_LOCAL_PTR const float4 *As, CLNN_LOCAL_PTR const float4 *Bs,
                                    float acc[RM][RN], const int tx, const int ty)
{
#pragma unroll
    for (int kk = 0; kk < TK; kk++) {
        float a[RM], b[RN];
        clnn_tile_unpack(a, RM, As + kk * (TM / 4) + ty, WG_M);
        clnn_tile_unpack(b, RN, Bs + kk * (TN / 4) + tx, WG_N);
#pragma unroll
        for (int i = 0; i < RM; i++)
#pragma unroll
            for (int j = 0; j < RN; j++)
                acc[i][j] = fma(a[i], b[j], acc[i][j]);
    }
}

/* Tile row (0..TM) of a work-item's accumulator row i, and column likewise. */
CLNN_INLINE int clnn_tile_row(const int i, const int ty) { return 4 * (ty + (i / 4) * WG_M) + i % 4; }
CLNN_INLINE int clnn_tile_col(const int j, const int tx) { return 4 * (tx + (j / 4) * WG_N) + j % 4; }
