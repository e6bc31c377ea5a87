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

/* acc += the staged A tile (TK x TM, as float4s) times the staged B tile. */
CLNN_INLINE void clnn_tile_multiply(CLNN_LOCAL_PTR const float4 *As, CLNN_LOCAL_PTR const float4 *Bs,
                                    float acc[RM][RN], const int tx, const int ty)
{
#pragma unroll
    for (int kk = 0; kk < TK; kk++) {
        float a[RM], b[RN];
#pragma unroll
        for (int q = 0; q < RM / 4; q++) {
            const float4 v = As[kk * (TM / 4) + ty + q * WG_M];
            a[4 * q] = v.x;
            a[4 * q + 1] = v.y;
            a[4 * q + 2] = v.z;
            a[4 * q + 3] = v.w;
        }
#pragma unroll
        for (int q = 0; q < RN / 4; q++) {
            const float4 v = Bs[kk * (TN / 4) + tx + q * WG_N];
            b[4 * q] = v.x;
            b[4 * q + 1] = v.y;
            b[4 * q + 2] = v.z;
            b[4 * q + 3] = v.w;
        }
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
