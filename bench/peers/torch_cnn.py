#!/usr/bin/python3
"""Training peer: PyTorch (CPU) trains kiln's reference CNN on Fashion-MNIST.

The model, initialisation and optimizer match kiln's reference workload:
Conv2D(64,3x3,relu) -> MaxPool(2x2) -> Conv2D(64,3x3,relu) -> MaxPool(2x2)
-> Flatten -> Dense(64,relu) -> Dense(10,softmax), pixels scaled by 1/255,
Glorot-uniform weights and zero biases, Adam (lr 1e-3, betas 0.9/0.999,
eps 1e-7), cross-entropy, batch 32, shuffled every epoch. PyTorch computes
in NCHW; the layout does not change the arithmetic.

Reads the IDX files of Debian's dataset-fashion-mnist (or --data DIR).
--limit N trains on the first N training images, as kiln train --limit N.
The epoch time covers the training loop only (not loading or evaluation);
test accuracy is measured on the 10,000 test images afterwards.
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np
import torch
from torch import nn


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        zero, dtype, ndim = struct.unpack(">HBB", f.read(4))
        if zero != 0 or dtype != 0x08:
            raise ValueError("%s: not an unsigned-byte IDX file" % path)
        dims = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        return np.frombuffer(f.read(), np.uint8).reshape(dims)


def find(data_dir, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError("%s(.gz) not found in %s" % (stem, data_dir))


def load(data_dir, split):
    images = read_idx(find(data_dir, split + "-images-idx3-ubyte"))
    labels = read_idx(find(data_dir, split + "-labels-idx1-ubyte"))
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)  # N,1,28,28
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def reference_cnn(classes=10, init="keras"):
    model = nn.Sequential(
        nn.Conv2d(1, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 5 * 5, 64), nn.ReLU(),
        nn.Linear(64, classes),
    )
    if init == "torch":
        # PyTorch's own defaults (Kaiming-uniform with a = sqrt(5) and
        # uniform biases), kept only to compare with figures quoted from a
        # stock PyTorch script; kiln initialises as Keras does.
        return model
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--limit", type=int, default=0, help="first N training images (0: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--init", choices=("keras", "torch"), default="keras",
                    help="weight initialisation: keras (Glorot uniform, zero biases; kiln's) "
                         "or torch (PyTorch's defaults)")
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    xtr, ytr = load(args.data, "train")
    xte, yte = load(args.data, "t10k")
    if args.limit > 0:
        xtr, ytr = xtr[:args.limit], ytr[:args.limit]
    model = reference_cnn(init=args.init)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    n = xtr.shape[0]
    print("torch %s, %d threads, %d parameters, %d training images, batch %d"
          % (torch.__version__, torch.get_num_threads(), params, n, args.batch), flush=True)
    epochs = []
    for epoch in range(1, args.epochs + 1):
        model.train()
        perm = torch.randperm(n)
        loss_sum, correct = 0.0, 0
        t0 = time.perf_counter()
        for i in range(0, n, args.batch):
            idx = perm[i:i + args.batch]
            xb, yb = xtr[idx], ytr[idx]
            opt.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == yb).sum().item()
        secs = time.perf_counter() - t0
        epochs.append({"epoch": epoch, "seconds": secs, "images_per_second": n / secs,
                       "train_loss": loss_sum / n, "train_accuracy": correct / n})
        print("torch epoch %d: %.1f s, %.0f images/s, loss %.4f, acc %.4f"
              % (epoch, secs, n / secs, loss_sum / n, correct / n), flush=True)
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, xte.shape[0], 1000):
            correct += (model(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item()
    acc = correct / xte.shape[0]
    print("torch test accuracy %.4f on %d images" % (acc, xte.shape[0]))
    out = {"torch": torch.__version__, "init": args.init, "threads": torch.get_num_threads(), "params": params,
           "train_images": n, "batch": args.batch, "epochs": epochs, "test_accuracy": acc}
    if args.json:
        with open(args.json + ".tmp", "w") as f:
            json.dump(out, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(args.json + ".tmp", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
