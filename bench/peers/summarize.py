#!/usr/bin/python3
"""Prints kiln/peer ratios from the JSON files bench/peers/run.sh wrote.

SGEMM: GFLOP/s ratio kiln/peer (above 1: kiln is faster), from the rounds
in OUT/sgemm (each round: OpenBLAS SkylakeX where the CPU has AVX-512,
kiln, OpenBLAS own detection, back to back): the medians over rounds of each side's median and of the
per-round ratios, and the best single runs. Training: epoch
time ratio kiln/peer (below 1: kiln is faster; issue 3's goal is <= 0.5).
Writes the table to OUT/peers.md too.
"""
import json
import os
import statistics
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def main(out):
    rows = []
    sg = os.path.join(out, "sgemm")
    rounds = sorted(int(f[len("kiln-"):]) for f in os.listdir(sg) if f.startswith("kiln-"))
    kb = load(os.path.join(sg, "kiln-%d" % rounds[0], "bench.json"))
    for name, how in (("openblas-skylakex", "OPENBLAS_CORETYPE=SkylakeX"), ("openblas-auto", "its own CPU detection")):
        per = {}  # size -> list of (kiln result, peer result), one per round
        core, threads = "", 0
        for r in rounds:
            path = os.path.join(sg, "%s-%d.json" % (name, r))
            if not os.path.exists(path):
                continue  # not run: the SkylakeX kernel on a CPU without AVX-512
            peer = load(path)
            core, threads = peer["blas"]["corename"], peer["blas"]["threads"]
            kr = load(os.path.join(sg, "kiln-%d" % r, "bench.json"))
            ks = {int(x["size"].split("x")[0]): x for x in kr["results"] if x["case"] == "sgemm"}
            for p in peer["results"]:
                if p["size"] in ks:
                    per.setdefault(p["size"], []).append((ks[p["size"]], p))
        label = "OpenBLAS %s (%s)" % (core, how)
        for n in sorted(per):
            flops = 2.0 * n ** 3
            pairs = per[n]
            kg = statistics.median(k["gflops"] for k, _ in pairs)
            pg = statistics.median(p["gflops"] for _, p in pairs)
            ratio = statistics.median(k["gflops"] / p["gflops"] for k, p in pairs)
            kbest = max(flops / k["min_seconds"] / 1e9 for k, _ in pairs)
            pbest = max(flops / p["min_seconds"] / 1e9 for _, p in pairs)
            each = ", ".join("%.2f" % (k["gflops"] / p["gflops"]) for k, p in pairs)
            rows.append(("SGEMM %d³ GFLOP/s, %s threads" % (n, threads), label,
                         "%.1f" % kg, "%.1f" % pg, "**%.2f** (rounds: %s)" % (ratio, each),
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

    lines = ["| measure | peer | kiln | peer | kiln/peer (SGEMM: median of the rounds' ratios) | best runs: kiln / peer = ratio |",
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
