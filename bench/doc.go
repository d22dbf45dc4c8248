// Package bench runs kiln's benchmark suite on any backend.Backend and
// writes its reports: a Markdown table, JSON with stable field names, a PNG
// chart, and old/new comparisons of two JSON reports (like benchstat).
//
// # Suites
//
//   - sgemm: C = A·B, square m = n = k (256, 512, 1024, 2048; --quick 64,
//     128, 256).
//   - conv: every conv2d layer of the reference model on MNIST shapes
//     (28x28x1 → 3x3x64 and 13x13x64 → 3x3x64), batch 32: forward,
//     backward-data and backward-filter.
//   - pool: every maxpool2d layer of the reference model, batch 32:
//     forward (with argmax) and backward.
//   - train: one engine.Model.TrainStep of the reference model at batch 32
//     with Adam (upload, forward, loss, backward, update).
//   - infer: engine.Model.Predict throughput at batch 64, and its latency
//     at batch 1 (p50/p99 over single calls).
//
// # Timing
//
// Every case is warmed up first, then timed in repeated runs; each run
// calls Sync before the clock stops, so queued device work is counted.
// Short cases repeat the op inside a run so that the run lasts at least
// MinRunTime, and report the time per op; the count is calibrated after
// the warm-up, on batches of warm calls timed as a run is, never on the
// cold first call (allocation, filter transform, first launch). Each
// result names the code path that ran where a backend has several
// (Result.Features: the cpu backend's avx512, avx2 or generic kernels).
// The report gives the median and
// the spread (min, max and the interquartile range Q1–Q3). Latency cases
// time every single call and report p50/p99 (nearest-rank percentiles;
// see Flop counts below).
//
// # Flop counts (2 flops per multiply-add; exact for the work defined)
//
//   - SGEMM: 2·m·n·k.
//   - Conv2D forward: 2·N·OutH·OutW·F·KH·KW·C. Backward-data and
//     backward-filter perform the same multiply-adds, so the same count.
//     Taps over padding zeros are counted too (the reference model uses
//     valid padding, where there are none). The forward case passes the
//     same weights on every call, so a backend that caches a transformed
//     filter (the CPU backend's Winograd) reuses it, as at inference; a
//     training step transforms its changed weights every time.
//   - Every convolution is counted as the direct one whichever algorithm
//     runs it: Winograd does fewer multiply-adds, so conv, train and
//     infer GFLOP/s are effective figures and can pass the FMA peak.
//   - Dense: 2·N·In·Out per pass.
//   - Train step: for each conv and dense layer, forward, backward-filter
//     and backward-data (the first layer has no backward-data, as the
//     engine skips it). Bias, ReLU, pooling, softmax/loss and the optimizer are
//     memory-bound and not counted; GFLOP/s of a train step is therefore a
//     slight underestimate of the arithmetic done.
//   - Inference: the forward passes of the conv and dense layers.
//   - Max pooling does no flops; its throughput is reported in GB/s of
//     compulsory traffic: forward reads the part of x its windows cover
//     and writes y and argmax (4·(N·Hc·Wc·C + 2·N·OutH·OutW·C) bytes, Hc
//     and Wc the covered rows and columns: 10 of 11 for 2×2 windows over
//     11), backward reads dy and argmax and writes all of dx
//     (4·(2·N·OutH·OutW·C + N·H·W·C) bytes).
//   - Latency: p50/p99 are nearest-rank percentiles of the single calls;
//     with fewer than 100 calls (--quick) p99 is the slowest call.
//
// # Host load
//
// On Linux a report records how busy the machine was with other work
// while it ran (Report.Load, from /proc/stat, /proc/self/stat and
// /proc/loadavg): the CPU time other processes used, in CPUs on average,
// the hypervisor's steal share, and the load average at start and end.
// HostLoad.Busy flags a run where other work took more than a tenth of
// the CPUs or steal passed 5 %.
//
// Per cent of peak is GFLOP/s over the FP32 FMA peak that MeasurePeak
// measures on the host CPU in the same run; it is given for the cpu
// backend only (a GPU's peak is not measured).
package bench
