#!/usr/bin/python3
"""Prints kiln/peer ratios from the JSON files bench/peers/run.sh wrote.

SGEMM: GFLOP/s ratio kiln/peer (above 1: kiln is faster). Training: epoch
time ratio kiln/peer (below 1: kiln is faster; issue 3's goal is <= 0.5).
Writes the table to OUT/peers.md too.
"""
import json
import os
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def main(out):
    rows = []
    skx = load(os.path.join(out, "openblas-skylakex.json"))
    auto = load(os.path.join(out, "openblas-auto.json"))
    kb = load(os.path.join(out, "kiln-bench", "bench.json"))
    kiln_sgemm = {int(r["size"].split("x")[0]): r for r in kb["results"] if r["case"] == "sgemm"}
    for peer, label in ((skx, "OpenBLAS %s (OPENBLAS_CORETYPE=SkylakeX)" % skx["blas"]["corename"]),
                        (auto, "OpenBLAS %s (its own CPU detection)" % auto["blas"]["corename"])):
        for r in peer["results"]:
            k = kiln_sgemm.get(r["size"])
            if not k:
                continue
            n = r["size"]
            flops = 2.0 * n ** 3
            kbest, pbest = flops / k["min_seconds"] / 1e9, flops / r["min_seconds"] / 1e9
            rows.append(("SGEMM %d³ GFLOP/s, %s threads" % (n, peer["blas"]["threads"]), label,
                         "%.1f" % k["gflops"], "%.1f" % r["gflops"], "%.2f" % (k["gflops"] / r["gflops"]),
                         "%.1f / %.1f = %.2f" % (kbest, pbest, kbest / pbest)))
    torch = load(os.path.join(out, "torch.json"))
    kt = load(os.path.join(out, "kiln-train.json"))
    te, ke = torch["epochs"][0], kt["epochs"][0]
    label = "PyTorch %s CPU, %d threads" % (torch["torch"], torch["threads"])
    rows.append(("training epoch seconds (%d images, batch %d)" % (kt["train_samples"], kt["batch"]),
                 label, "%.1f" % ke["seconds"], "%.1f" % te["seconds"], "%.2f" % (ke["seconds"] / te["seconds"]), ""))
    rows.append(("training images/s", label, "%.0f" % ke["images_per_second"],
                 "%.0f" % te["images_per_second"], "%.2f" % (ke["images_per_second"] / te["images_per_second"]), ""))
    rows.append(("test accuracy after the epoch (10k images)", label, "%.4f" % kt["test_accuracy"],
                 "%.4f" % torch["test_accuracy"], "%+.4f (difference)" % (kt["test_accuracy"] - torch["test_accuracy"]), ""))

    lines = ["| measure | peer | kiln | peer | kiln/peer (medians) | best runs: kiln / peer = ratio |",
             "|---|---|---:|---:|---:|---:|"]
    lines += ["| %s | %s | %s | %s | %s | %s |" % r for r in rows]
    peak = kb.get("peak", {})
    if peak.get("gflops"):
        lines.append("")
        lines.append("Measured FP32 peak in the same run (kiln bench, %d threads): %.1f GFLOP/s (%s)."
                     % (peak["threads"], peak["gflops"], peak["source"]))
    lines.append("")
    lines.append("SGEMM: above 1 kiln is faster. Training seconds: below 1 kiln is faster. The best-run column")
    lines.append("compares the fastest timed run of each side (GFLOP/s), which a busy shared machine disturbs least.")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    tmp = os.path.join(out, ".peers.md.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(out, "peers.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "out/peers"))
