/* Element-wise kernels and the bias reduction. One work-item per element
 * unless said otherwise; global sizes are rounded up, so every kernel
 * bound-checks against its n. */

/* x[r*cols + c] += bias[c], in place, over rows*cols = n elements. */
__kernel void bias_add(__global float *x, __global const float *bias, const int n, const int cols)
{
    const int i = get_global_id(0);
    if (i < n)
        x[i] += bias[i % cols];
}

/* db[c] = sum_r dy[r*cols + c]. Work-groups of BG_C x BG_R work-items: dim 0
 * is the column, dim 1 a lane that sums rows lane, lane+BG_R, ...; the lanes
 * are then reduced in local memory (fixed order: deterministic). */
#define BG_C 16
#define BG_R 16
__kernel __attribute__((reqd_work_group_size(BG_C, BG_R, 1)))
void bias_grad(__global const float *dy, __global float *db, const int rows, const int cols)
{
    __local acc_t part[BG_R][BG_C];
    const int lc = get_local_id(0), lr = get_local_id(1);
    const int c = get_global_id(0);
    acc_t s = 0;
    if (c < cols)
        for (int r = lr; r < rows; r += BG_R)
            s += dy[r * cols + c];
    part[lr][lc] = s;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int step = BG_R / 2; step > 0; step >>= 1) {
        if (lr < step)
            part[lr][lc] += part[lr + step][lc];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lr == 0 && c < cols)
        db[c] = (float)part[0][lc];
}

/* y = x > 0 ? x : 0 (NaN gives 0, as on the CPU backend); x may equal y.
 * On the bits: a device that flushes denormals to zero (OpenCL 1.2 allows
 * it) would compare a positive subnormal as 0 and drop it. A float is
 * positive (subnormal, normal or +Inf, not NaN) when its bits as an int lie
 * in (0, 0x7f800000]. */
__kernel void relu(__global const float *x, __global float *y, const int n)
{
    const int i = get_global_id(0);
    if (i < n) {
        const int v = as_int(x[i]);
        y[i] = v > 0 && v <= 0x7f800000 ? as_float(v) : 0.0f;
    }
}

/* dx = y > 0 ? dy : 0, y > 0 tested on the bits as in relu. */
__kernel void relu_bwd(__global const float *y, __global const float *dy, __global float *dx, const int n)
{
    const int i = get_global_id(0);
    if (i < n) {
        const int v = as_int(y[i]);
        dx[i] = v > 0 && v <= 0x7f800000 ? dy[i] : 0.0f;
    }
}

/* c = a * b. */
__kernel void mul(__global const float *a, __global const float *b, __global float *c, const int n)
{
    const int i = get_global_id(0);
    if (i < n)
        c[i] = a[i] * b[i];
}

/* mask[i] = scale if kept else 0, with exactly the arithmetic of
 * backend.DropoutKeep: SplitMix64 of seed + i*golden, top 24 bits as a
 * uniform float in [0,1), kept when u >= rate. scale (1/(1-rate), or 0 when
 * rate is 1) is computed by the host in float32. */
__kernel void dropout_mask(__global float *mask, const int n, const float rate, const float scale, const ulong seed)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    ulong z = seed + (ulong)i * 0x9E3779B97F4A7C15UL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
    z ^= z >> 31;
    const float u = (float)(uint)(z >> 40) * (1.0f / 16777216.0f);
    mask[i] = u >= rate ? scale : 0.0f;
}
