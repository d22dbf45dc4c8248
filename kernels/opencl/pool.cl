/* Max pooling over NHWC input, no padding. */

/* Forward: one work-item per output element. argmax is the winner's offset
 * ky*KW + kx inside its window, stored as float; ties go to the first
 * element in row-major window order (strict > keeps the earlier one). */
__kernel void maxpool_fwd(__global const float *x, __global float *y, __global float *argmax,
                          const int N, const int H, const int W, const int C, const int KH, const int KW,
                          const int SH, const int SW, const int OH, const int OW)
{
    const int idx = get_global_id(0);
    if (idx >= N * OH * OW * C)
        return;
    int t = idx;
    const int c = t % C; t /= C;
    const int ow = t % OW; t /= OW;
    const int oh = t % OH;
    const int n = t / OH;
    const int base = ((n * H + oh * SH) * W + ow * SW) * C + c;
    float best = x[base];
    int arg = 0;
    for (int ky = 0; ky < KH; ky++)
        for (int kx = 0; kx < KW; kx++) {
            const float v = x[base + (ky * W + kx) * C];
            if (v > best) {
                best = v;
                arg = ky * KW + kx;
            }
        }
    y[idx] = best;
    argmax[idx] = (float)arg;
}

/* Backward (gather form, deterministic, overwrites dx): every input element
 * sums dy over the windows whose argmax points at it, in the order
 * (oh, ow) ascending. Argmax values that are not a window offset (out of
 * range, or not an integer, as on the CPU backend) add nothing. One
 * work-item per input element. */
__kernel void maxpool_bwd(__global const float *dy, __global const float *argmax, __global float *dx,
                          const int N, const int H, const int W, const int C, const int KH, const int KW,
                          const int SH, const int SW, const int OH, const int OW)
{
    const int idx = get_global_id(0);
    if (idx >= N * H * W * C)
        return;
    int t = idx;
    const int c = t % C; t /= C;
    const int w = t % W; t /= W;
    const int h = t % H;
    const int n = t / H;
    const float win = (float)(KH * KW);
    const int oh0 = h < KH ? 0 : (h - KH) / SH + 1;
    const int oh1 = min(OH - 1, h / SH);
    const int ow0 = w < KW ? 0 : (w - KW) / SW + 1;
    const int ow1 = min(OW - 1, w / SW);
    float sum = 0.0f;
    for (int oh = oh0; oh <= oh1; oh++)
        for (int ow = ow0; ow <= ow1; ow++) {
            const int o = ((n * OH + oh) * OW + ow) * C + c;
            const float a = argmax[o];
            if (!(a >= 0.0f && a < win) || (float)(int)a != a)
                continue;
            if ((int)a == (h - oh * SH) * KW + (w - ow * SW))
                sum += dy[o];
        }
    dx[idx] = sum;
}
