/* Softmax and softmax cross-entropy over rows x cols logits, one work-item
 * per row. Exponentials are taken after subtracting the row maximum and
 * summed in acc_t (double where available). */

__kernel void softmax(__global const float *x, __global float *y, const int rows, const int cols)
{
    const int r = get_global_id(0);
    if (r >= rows)
        return;
    __global const float *xr = x + r * cols;
    __global float *yr = y + r * cols;
    float m = xr[0];
    for (int i = 1; i < cols; i++)
        m = xr[i] > m ? xr[i] : m;
    acc_t sum = 0;
    for (int i = 0; i < cols; i++)
        sum += exp((acc_t)xr[i] - (acc_t)m);
    const acc_t inv = 1 / sum;
    for (int i = 0; i < cols; i++)
        yr[i] = (float)(exp((acc_t)xr[i] - (acc_t)m) * inv);
}

/* Per row: grad = (softmax - onehot(label)) / rows, and part[2r] = loss
 * (logsumexp - logit[label]), part[2r+1] = 1 if the first maximum is at the
 * label else 0. Labels were validated by the host (integers in [0, cols)). */
__kernel void softmax_xent_rows(__global const float *logits, __global const float *labels,
                                __global float *grad, __global float *part, const int rows, const int cols)
{
    const int r = get_global_id(0);
    if (r >= rows)
        return;
    __global const float *xr = logits + r * cols;
    __global float *gr = grad + r * cols;
    float m = xr[0];
    int am = 0;
    for (int i = 1; i < cols; i++)
        if (xr[i] > m) {
            m = xr[i];
            am = i;
        }
    acc_t sum = 0;
    for (int i = 0; i < cols; i++)
        sum += exp((acc_t)xr[i] - (acc_t)m);
    const acc_t lse = (acc_t)m + log(sum);
    const int label = (int)labels[r];
    const acc_t inv = (acc_t)1 / (acc_t)rows;
    for (int i = 0; i < cols; i++) {
        acc_t p = exp((acc_t)xr[i] - (acc_t)m) / sum;
        if (i == label)
            p -= 1;
        gr[i] = (float)(p * inv);
    }
    part[2 * r] = (float)(lse - (acc_t)xr[label]);
    part[2 * r + 1] = am == label ? 1.0f : 0.0f;
}

/* stats[0] = sum of part[2r], stats[1] = sum of part[2r+1] over rows, by one
 * work-group of XR work-items (fixed reduction order: deterministic). */
#define XR 64
__kernel __attribute__((reqd_work_group_size(XR, 1, 1)))
void softmax_xent_reduce(__global const float *part, __global float *stats, const int rows)
{
    __local acc_t ls[XR], lc[XR];
    const int t = get_local_id(0);
    acc_t s = 0, c = 0;
    for (int r = t; r < rows; r += XR) {
        s += part[2 * r];
        c += part[2 * r + 1];
    }
    ls[t] = s;
    lc[t] = c;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int step = XR / 2; step > 0; step >>= 1) {
        if (t < step) {
            ls[t] += ls[t + step];
            lc[t] += lc[t + step];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (t == 0) {
        stats[0] = (float)ls[0];
        stats[1] = (float)lc[0];
    }
}
