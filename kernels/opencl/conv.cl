/* Convolution helpers: NHWC input, HWIO filter (KH, KW, C, F). The backend
 * lowers Conv2D and its two backward passes to GEMMs over an im2col matrix
 * (rows = images x OH x OW, columns = KH x KW x C in the filter's order) and
 * processes the batch in chunks of nb images starting at image n0, so the
 * column matrix stays bounded. */

/* im2col: col[row][(ky*KW + kx)*C + c] = x[n0+nn][oh*SH - PT + ky][ow*SW - PL + kx][c],
 * zero outside the input. One work-item per element of col. */
__kernel void im2col(__global const float *x, __global float *col, const int n0, const int nb,
                     const int H, const int W, const int C, const int KH, const int KW,
                     const int SH, const int SW, const int PT, const int PL, const int OH, const int OW)
{
    const int total = nb * OH * OW * KH * KW * C;
    const int idx = get_global_id(0);
    if (idx >= total)
        return;
    int t = idx;
    const int c = t % C; t /= C;
    const int kx = t % KW; t /= KW;
    const int ky = t % KH; t /= KH;
    const int ow = t % OW; t /= OW;
    const int oh = t % OH;
    const int nn = t / OH;
    const int ih = oh * SH - PT + ky, iw = ow * SW - PL + kx;
    float v = 0.0f;
    if (ih >= 0 && ih < H && iw >= 0 && iw < W)
        v = x[(((n0 + nn) * H + ih) * W + iw) * C + c];
    col[idx] = v;
}

/* col2im (gather form, deterministic, overwrites dx): every input element
 * sums the column entries of the output positions whose window covers it.
 * One work-item per element of dx for images n0 .. n0+nb-1. */
__kernel void col2im(__global const float *col, __global float *dx, const int n0, const int nb,
                     const int H, const int W, const int C, const int KH, const int KW,
                     const int SH, const int SW, const int PT, const int PL, const int OH, const int OW)
{
    const int total = nb * H * W * C;
    const int idx = get_global_id(0);
    if (idx >= total)
        return;
    int t = idx;
    const int c = t % C; t /= C;
    const int iw = t % W; t /= W;
    const int ih = t % H;
    const int nn = t / H;
    const int kkc = KH * KW * C;
    float sum = 0.0f;
    for (int ky = 0; ky < KH; ky++) {
        const int ohs = ih + PT - ky;
        if (ohs < 0 || ohs % SH != 0)
            continue;
        const int oh = ohs / SH;
        if (oh >= OH)
            continue;
        for (int kx = 0; kx < KW; kx++) {
            const int ows = iw + PL - kx;
            if (ows < 0 || ows % SW != 0)
                continue;
            const int ow = ows / SW;
            if (ow >= OW)
                continue;
            sum += col[((nn * OH + oh) * OW + ow) * kkc + (ky * KW + kx) * C + c];
        }
    }
    dx[(n0 * H * W * C) + idx] = sum;
}
