/* kiln OpenCL kernels: definitions shared by every program. Prepended to
 * each program's source before it is built (see kernels.go). OpenCL C 1.2. */

/* Reductions accumulate in double where the device has it, else float. */
#if defined(cl_khr_fp64)
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
typedef double acc_t;
#else
typedef float acc_t;
#endif

/* Work-group size of the 1-D element-wise kernels; the host rounds the
 * global size up to a multiple of it and the kernels bound-check. */
#define EW_GROUP 64
