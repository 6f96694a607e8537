#!/usr/bin/env python3
"""Checks a module written by `landscape export` in PyTorch itself.

    export_check.py --pt m.pt --model m.json --csv digits.csv --target digit --input-shape 1,8,8 --evaluate ev.json

Loads the .pt with torch.jit.load, compares its named_parameters() (flattened, in order) with the model file's
"parameters" (exactly), and its squared loss sum |f(x) - onehot(y)|^2 and gradient norm on the CSV's rows with the
numbers `landscape evaluate --json` wrote (loss, gradientNorm). Prints one JSON line.
"""
import argparse, csv, json

import numpy as np
import torch


def main():
    ap = argparse.ArgumentParser()
    for name in ("--pt", "--model", "--csv", "--target", "--input-shape", "--evaluate"):
        ap.add_argument(name, required=True)
    args = ap.parse_args()
    torch.set_default_dtype(torch.float64)
    module = torch.jit.load(args.pt)
    p = torch.cat([t.detach().reshape(-1) for t in module.parameters()]).numpy()
    stored = np.array(json.load(open(args.model))["parameters"], dtype=np.float64)
    rows = list(csv.reader(open(args.csv)))
    header, values = rows[0], np.array(rows[1:], dtype=np.float64)
    column = header.index(args.target)
    x = torch.tensor(np.delete(values, column, axis=1)).reshape([-1] + [int(s) for s in args.input_shape.split(",")])
    labels = torch.tensor(values[:, column].astype(np.int64))
    f = module(x)
    y = torch.nn.functional.one_hot(labels, f.shape[1]).double()
    loss = ((f - y) ** 2).sum()
    grad = torch.autograd.grad(loss, list(module.parameters()))
    norm = torch.cat([g.reshape(-1) for g in grad]).norm().item()
    evaluated = json.load(open(args.evaluate))
    print(json.dumps({
        "torch": torch.__version__, "training": module.training, "n": int(p.size), "parametersEqual": bool(np.array_equal(p, stored)),
        "loss": loss.item(), "landscapeLoss": evaluated["loss"], "lossRelativeDifference": abs(loss.item() - evaluated["loss"]) / abs(evaluated["loss"]),
        "gradientNorm": norm, "landscapeGradientNorm": evaluated["gradientNorm"],
        "gradientNormRelativeDifference": abs(norm - evaluated["gradientNorm"]) / abs(evaluated["gradientNorm"]),
    }))


if __name__ == "__main__":
    main()
