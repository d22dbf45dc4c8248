#!/usr/bin/python3
"""SGEMM peer: numpy float32 matmul (OpenBLAS through Debian's libblas.so.3).

Times C = A @ B for square float32 matrices: warm-up, then repeated runs;
reports the median (and min/max) seconds and GFLOP/s = 2*n^3 / median.
Says which BLAS library numpy loaded and which OpenBLAS core kernel it runs
(openblas_get_corename), so a forced OPENBLAS_CORETYPE can be verified.
Run with the thread count set by OPENBLAS_NUM_THREADS.
"""
import argparse
import ctypes
import json
import os
import statistics
import sys
import time

import numpy as np


def blas_library():
    """Return the path of the BLAS shared library mapped into this process."""
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if ".so" in line}
    for p in sorted(paths):
        base = os.path.basename(p)
        if "openblas" in p or base.startswith("libblas"):
            return p
    return ""


def openblas_info(path):
    """Core name, config and thread count reported by OpenBLAS itself."""
    info = {"library": path, "corename": "", "config": "", "threads": 0}
    if not path:
        return info
    try:
        lib = ctypes.CDLL(path)
        lib.openblas_get_corename.restype = ctypes.c_char_p
        lib.openblas_get_config.restype = ctypes.c_char_p
        info["corename"] = lib.openblas_get_corename().decode()
        info["config"] = lib.openblas_get_config().decode()
        info["threads"] = lib.openblas_get_num_threads()
    except (OSError, AttributeError) as e:
        info["corename"] = "unknown (not OpenBLAS: %s)" % e
    return info


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="1024,2048")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--label", default="openblas")
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args()

    rng = np.random.default_rng(1)
    np.dot(np.ones((64, 64), np.float32), np.ones((64, 64), np.float32))  # load BLAS
    info = openblas_info(blas_library())
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        a = rng.uniform(-1, 1, (n, n)).astype(np.float32)
        b = rng.uniform(-1, 1, (n, n)).astype(np.float32)
        c = np.empty((n, n), np.float32)
        for _ in range(2):
            np.matmul(a, b, out=c)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            np.matmul(a, b, out=c)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        results.append({"size": n, "median_seconds": med, "min_seconds": min(times),
                        "max_seconds": max(times), "gflops": 2 * n ** 3 / med / 1e9})
        print("%s sgemm %dx%dx%d: median %.2f ms (min %.2f, max %.2f)  %.1f GFLOP/s"
              % (args.label, n, n, n, med * 1e3, min(times) * 1e3, max(times) * 1e3,
                 results[-1]["gflops"]), flush=True)
    out = {"label": args.label, "numpy": np.__version__, "blas": info,
           "env": {k: os.environ.get(k, "") for k in
                   ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OPENBLAS_L2_SIZE")},
           "results": results}
    print("%s: library %s, core %s, %d threads, config %s"
          % (args.label, info["library"], info["corename"], info["threads"], info["config"]))
    if args.json:
        with open(args.json + ".tmp", "w") as f:
            json.dump(out, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(args.json + ".tmp", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
