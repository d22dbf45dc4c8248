#!/usr/bin/python3
"""PyTorch half of the step-by-step cross-check (see bench/peers/stepcheck/main.go).

Loads the initial weights kiln wrote, trains the same reference CNN with
PyTorch on the same batches in the same order with the same Adam update
(Keras form: lr_t = lr*sqrt(1-b2^t)/(1-b1^t), w -= lr_t*m/(sqrt(v)+eps),
eps 1e-7), twice: in float64, the reference, and in float32. It then
compares kiln's per-step losses and final weights with the reference.

Over the first steps every op and the optimizer must agree closely (the
check that exits non-zero). Later, float32 rounding differences are
amplified by training itself (a ReLU that flips, Adam dividing by a tiny
second moment), so kiln drifts from the reference; the float32 PyTorch run
shows how far rounding alone moves training, and kiln's drift should be of
the same size.

With --eval it also scores kiln's final weights and both PyTorch runs' on
the test set: run over a whole epoch (stepcheck --steps 1875), that says
whether kiln's arithmetic trains as well as PyTorch's from the same weights
and batches, apart from the seeds' draws of weights and batch order.

    /usr/bin/python3 bench/peers/stepcheck.py --dir out/stepcheck --data DIR [--eval]
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from torch import nn

from torch_cnn import find, read_idx  # same folder: Python puts it on sys.path


class NHWCFlatten(nn.Module):
    """Flattens NCHW activations in NHWC order, as kiln (and Keras) do."""

    def forward(self, x):
        return x.permute(0, 2, 3, 1).flatten(1)


def build(params, flat):
    """The reference CNN with kiln's weights, converted to PyTorch's layout."""
    model = nn.Sequential(
        nn.Conv2d(1, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        NHWCFlatten(),
        nn.Linear(64 * 5 * 5, 64), nn.ReLU(),
        nn.Linear(64, 10),
    ).double()
    targets = [model[0].weight, model[0].bias, model[3].weight, model[3].bias,
               model[7].weight, model[7].bias, model[9].weight, model[9].bias]
    if len(params) != len(targets):
        raise ValueError("kiln wrote %d parameters, the reference CNN has %d" % (len(params), len(targets)))
    off = 0
    with torch.no_grad():
        for p, t in zip(params, targets):
            n = int(np.prod(p["shape"]))
            w = torch.from_numpy(flat[off:off + n].astype(np.float64)).reshape(p["shape"])
            off += n
            if len(p["shape"]) == 4:  # KH, KW, C, F -> F, C, KH, KW
                w = w.permute(3, 2, 0, 1)
            elif len(p["shape"]) == 2:  # in, out -> out, in
                w = w.t()
            if tuple(w.shape) != tuple(t.shape):
                raise ValueError("%s: shape %s does not fit %s" % (p["name"], tuple(w.shape), tuple(t.shape)))
            t.copy_(w)
    if off != flat.size:
        raise ValueError("weights file holds %d values, parameters need %d" % (flat.size, off))
    return model, targets


def to_kiln(params, targets):
    """PyTorch's parameters back in kiln's layout, one flat float64 array each."""
    out = []
    for p, t in zip(params, targets):
        w = t.detach()
        if len(p["shape"]) == 4:
            w = w.permute(2, 3, 1, 0)
        elif len(p["shape"]) == 2:
            w = w.t()
        out.append(w.contiguous().numpy().ravel())
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default="out/stepcheck", help="where stepcheck wrote its files")
    ap.add_argument("--data", required=True,
                    help="directory of the training IDX files (and, with --eval, of the t10k test files)")
    ap.add_argument("--exact-steps", type=int, default=10,
                    help="steps over which kiln's loss must match the float64 reference to --loss-tol")
    ap.add_argument("--loss-tol", type=float, default=1e-5, help="largest allowed |loss difference| in those steps")
    ap.add_argument("--eval", action="store_true",
                    help="also score the three final models on the test set (t10k files in --data): whether "
                         "kiln's arithmetic trains as well as PyTorch's from the same weights and batches")
    args = ap.parse_args()

    params = json.load(open(os.path.join(args.dir, "params.json")))
    kiln = json.load(open(os.path.join(args.dir, "kiln.json")))
    init = np.fromfile(os.path.join(args.dir, "init.bin"), "<f4")
    final = np.fromfile(os.path.join(args.dir, "final.bin"), "<f4")
    order = np.fromfile(os.path.join(args.dir, "order.bin"), "<i4")
    steps, batch = kiln["steps"], kiln["batch"]
    if order.size != steps * batch:
        raise ValueError("order.bin holds %d indices, %d steps of %d need %d" % (order.size, steps, batch, steps * batch))

    images = read_idx(find(args.data, "train-images-idx3-ubyte"))
    labels = read_idx(find(args.data, "train-labels-idx1-ubyte"))
    x = torch.from_numpy(images[order].astype(np.float32) / np.float32(255)).unsqueeze(1)
    y = torch.from_numpy(labels[order].astype(np.int64))

    torch.set_num_threads(2)
    ref_loss, ref_w = train(params, init, x, y, steps, batch, torch.float64)
    f32_loss, f32_w = train(params, init, x, y, steps, batch, torch.float32)
    kl = np.asarray(kiln["loss"], np.float64)
    dk, dt = np.abs(kl - ref_loss), np.abs(f32_loss - ref_loss)
    print("|loss - float64 PyTorch loss| per step:")
    print("%6s %12s %14s %16s" % ("step", "loss", "kiln (f32)", "PyTorch (f32)"))
    for s in list(range(min(10, steps))) + [i for i in range(10, steps) if (i + 1) % 50 == 0 or i + 1 == steps]:
        print("%6d %12.6f %14.2e %16.2e" % (s + 1, ref_loss[s], dk[s], dt[s]))
    k = min(args.exact_steps, steps)
    ok = bool(dk[:k].max() <= args.loss_tol)
    print("first %d steps: largest |kiln - reference| %.2e (tolerance %.0e): %s"
          % (k, dk[:k].max(), args.loss_tol, "ok" if ok else "TOO LARGE"))
    print("all %d steps: median |diff| kiln %.2e, PyTorch float32 %.2e; largest kiln %.2e, PyTorch float32 %.2e"
          % (steps, np.median(dk), np.median(dt), dk.max(), dt.max()))
    print("final weights, relative difference from the float64 reference:")
    off = 0
    for p, w, w32 in zip(params, ref_w, f32_w):
        kf = final[off:off + w.size].astype(np.float64)
        off += w.size
        n = max(np.linalg.norm(w), 1e-30)
        print("  %-14s kiln %.2e   PyTorch float32 %.2e" % (p["name"], np.linalg.norm(kf - w) / n, np.linalg.norm(w32 - w) / n))
    if args.eval:
        tx = torch.from_numpy(read_idx(find(args.data, "t10k-images-idx3-ubyte")).astype(np.float32) / np.float32(255)).unsqueeze(1)
        ty = torch.from_numpy(read_idx(find(args.data, "t10k-labels-idx1-ubyte")).astype(np.int64))
        print("test accuracy after %d steps (%d images), scored in float64:" % (steps, ty.numel()))
        for name, flat in (("kiln", final.astype(np.float64)),
                           ("PyTorch float32", np.concatenate(f32_w)),
                           ("PyTorch float64", np.concatenate(ref_w))):
            print("  %-16s %.4f" % (name, accuracy(params, flat, tx, ty)))
    print("AGREE" if ok else "DISAGREE")
    return 0 if ok else 1


def accuracy(params, flat, x, y):
    """Test accuracy of the reference CNN with weights flat (kiln's layout)."""
    model, _ = build(params, flat)
    correct = 0
    with torch.no_grad():
        for i in range(0, y.numel(), 1000):
            correct += (model(x[i:i + 1000].double()).argmax(1) == y[i:i + 1000]).sum().item()
    return correct / y.numel()


def train(params, init, x, y, steps, batch, dtype):
    """Trains from kiln's initial weights with the Keras-form Adam; returns
    the per-step losses and the final weights in kiln's layout."""
    model, targets = build(params, init)
    model = model.to(dtype)
    x = x.to(dtype)
    lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-7
    m = [torch.zeros_like(t) for t in targets]
    v = [torch.zeros_like(t) for t in targets]
    loss_fn = nn.CrossEntropyLoss()
    losses = np.zeros(steps)
    for s in range(steps):
        xb, yb = x[s * batch:(s + 1) * batch], y[s * batch:(s + 1) * batch]
        for t in targets:
            t.grad = None
        loss = loss_fn(model(xb), yb)
        loss.backward()
        t_ = s + 1
        lr_t = lr * (1 - b2 ** t_) ** 0.5 / (1 - b1 ** t_)
        with torch.no_grad():
            for i, t in enumerate(targets):
                g = t.grad
                m[i].mul_(b1).add_(g, alpha=1 - b1)
                v[i].mul_(b2).addcmul_(g, g, value=1 - b2)
                t.sub_(lr_t * m[i] / (v[i].sqrt() + eps))
        losses[s] = loss.item()
    return losses, [w.astype(np.float64) for w in to_kiln(params, targets)]


if __name__ == "__main__":
    sys.exit(main())
