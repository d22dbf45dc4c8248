/* Optimizer steps (Keras semantics, as documented on backend.AdamParams and
 * backend.SGDParams). One work-item per parameter. */

/* m = m + (g - m)*omb1; v = v + (g*g - v)*omb2; p -= lrt * m / (sqrt(v) + eps)
 * where omb1 = 1-beta1, omb2 = 1-beta2 and lrt = lr*sqrt(1-beta2^t)/(1-beta1^t)
 * are computed by the host exactly as the CPU backend does. */
__kernel void adam(__global float *param, __global const float *grad, __global float *m, __global float *v,
                   const int n, const float lrt, const float omb1, const float omb2, const float eps)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const float g = grad[i];
    const float mi = m[i] + (g - m[i]) * omb1;
    const float vi = v[i] + (g * g - v[i]) * omb2;
    m[i] = mi;
    v[i] = vi;
    param[i] -= lrt * mi / (sqrt(vi) + eps);
}

/* vel = momentum*vel - lr*g; p += vel. */
__kernel void sgd(__global float *param, __global const float *grad, __global float *vel,
                  const int n, const float lr, const float momentum)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const float v = momentum * vel[i] - lr * grad[i];
    vel[i] = v;
    param[i] += v;
}
