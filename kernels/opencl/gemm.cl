/* SGEMM, row-major: C = alpha*op(A)*op(B) + beta*C, op(A) m x k, op(B) k x n.
 * A is stored m x k (k x m when transA), B k x n (n x k when transB).
 * When beta == 0, C is not read (it may hold NaN). aoff/boff/coff are
 * element offsets into the buffers (convolutions run GEMMs on slices). */

/* Tiled kernel: a work-group of WX x WY = 16 x 16 work-items computes a
 * TM x TN = 64 x 64 tile of C (tile number get_group_id(0), columns
 * fastest), each work-item a 4 x 4 register block with
 * rows ty + 16*i and columns tx + 16*j (strided so that neighbouring
 * work-items read neighbouring local-memory words). The k loop walks TK =
 * 16 wide panels of op(A) and op(B) staged in local memory; loads are laid
 * out so consecutive work-items read consecutive global addresses for every
 * transpose, and edge tiles are zero-padded. */
#define TM 64
#define TN 64
#define TK 16
#define WX 16
#define WY 16
#define RM (TM / WY)
#define RN (TN / WX)
#define NT (WX * WY)

__kernel __attribute__((reqd_work_group_size(WX, WY, 1)))
void sgemm_tiled(const int m, const int n, const int k, const int transA, const int transB,
                 const float alpha, __global const float *A, const int aoff,
                 __global const float *B, const int boff, const float beta,
                 __global float *C, const int coff)
{
    __local float As[TK][TM + 1];
    __local float Bs[TK][TN + 1];
    const int tx = get_local_id(0), ty = get_local_id(1);
    const int tid = ty * WX + tx;
    /* Tiles are numbered along dimension 0 only, columns fastest: GPUs
     * that cap dimension 1 at 65,535 groups (as CUDA's grid y) would refuse
     * a product of more than 4.19 M rows with the rows on it. */
    const int tilesN = (n + TN - 1) / TN;
    const int tile = get_group_id(0);
    const int col0 = (tile % tilesN) * TN, row0 = (tile / tilesN) * TM;
    A += aoff;
    B += boff;
    C += coff;

    float acc[RM][RN];
    for (int i = 0; i < RM; i++)
        for (int j = 0; j < RN; j++)
            acc[i][j] = 0.0f;

    for (int p0 = 0; p0 < k; p0 += TK) {
        for (int l = 0; l < (TM * TK) / NT; l++) {
            const int idx = tid + l * NT;
            int r, c;
            if (transA) { c = idx / TM; r = idx % TM; } /* contiguous along m */
            else        { r = idx / TK; c = idx % TK; } /* contiguous along k */
            const int gr = row0 + r, gc = p0 + c;
            float v = 0.0f;
            if (gr < m && gc < k)
                v = transA ? A[gc * m + gr] : A[gr * k + gc];
            As[c][r] = v;
        }
        for (int l = 0; l < (TK * TN) / NT; l++) {
            const int idx = tid + l * NT;
            int r, c;
            if (transB) { c = idx / TK; r = idx % TK; } /* contiguous along k */
            else        { r = idx / TN; c = idx % TN; } /* contiguous along n */
            const int gr = p0 + r, gc = col0 + c;
            float v = 0.0f;
            if (gr < k && gc < n)
                v = transB ? B[gc * k + gr] : B[gr * n + gc];
            Bs[r][c] = v;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int kk = 0; kk < TK; kk++) {
            float a[RM], b[RN];
            for (int i = 0; i < RM; i++)
                a[i] = As[kk][ty + i * WY];
            for (int j = 0; j < RN; j++)
                b[j] = Bs[kk][tx + j * WX];
            for (int i = 0; i < RM; i++)
                for (int j = 0; j < RN; j++)
                    acc[i][j] += a[i] * b[j];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    for (int i = 0; i < RM; i++) {
        const int r = row0 + ty + i * WY;
        if (r >= m)
            continue;
        for (int j = 0; j < RN; j++) {
            const int c = col0 + tx + j * WX;
            if (c >= n)
                continue;
            float v = alpha * acc[i][j];
            if (beta != 0.0f)
                v += beta * C[r * n + c];
            C[r * n + c] = v;
        }
    }
}

/* Naive kernel: one work-item per element of C, reading A and B straight
 * from global memory. Kept as the baseline the benchmark compares with. */
__kernel void sgemm_naive(const int m, const int n, const int k, const int transA, const int transB,
                          const float alpha, __global const float *A, const int aoff,
                          __global const float *B, const int boff, const float beta,
                          __global float *C, const int coff)
{
    const int c = get_global_id(0), r = get_global_id(1);
    if (r >= m || c >= n)
        return;
    A += aoff;
    B += boff;
    C += coff;
    float acc = 0.0f;
    for (int p = 0; p < k; p++) {
        const float a = transA ? A[p * m + r] : A[r * k + p];
        const float b = transB ? B[c * k + p] : B[p * n + c];
        acc += a * b;
    }
    float v = alpha * acc;
    if (beta != 0.0f)
        v += beta * C[r * n + c];
    C[r * n + c] = v;
}
