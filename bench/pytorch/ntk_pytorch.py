"""PyTorch's own route to the empirical NTK, for bench scale (see NtkBench.cs).

Reads a LossLandscape model file (losslandscape.mlp/1: per layer the Out x In weights row-major, then the biases) and the
inputs (float64, d x p, raw bytes), builds the same MLP in torch.nn, computes the per-sample Jacobians with functorch's
vmap(jacrev(f)) (torch.func's predecessor in PyTorch 1.13), concatenates them into J (ld x n, sample-major rows) and
forms K = J J^T: one warm-up run, not timed, then REPEATS timed runs (default 5, at least 5). Writes the last K as raw
float64 bytes and prints "median min max repeats peak_GB route" (seconds; the peak is the process's, over all runs).
Usage: ntk_pytorch.py MODEL INPUTS D P OUT THREADS [REPEATS]
"""
import json
import resource
import statistics
import sys
import time

import numpy as np
import torch
from functorch import jacrev, make_functional, vmap


class SmooLU(torch.nn.Module):
    """x * exp(-1/x) for x > 0, else 0 (the paper's rectified activation)."""

    def forward(self, x):
        positive = x > 0
        safe = torch.where(positive, x, torch.ones_like(x))
        return torch.where(positive, safe * torch.exp(-1.0 / safe), torch.zeros_like(x))


ACTIVATIONS = {"tanh": torch.nn.Tanh, "smoolu": SmooLU, "relu": torch.nn.ReLU}


def build(model):
    p = np.asarray(model["parameters"], dtype=np.float64)
    dims = [model["inputDim"]] + [h["width"] for h in model["hidden"]] + [model["outputDim"]]
    acts = [h["activation"] for h in model["hidden"]] + [None]
    layers, offset = [], 0
    for k in range(len(dims) - 1):
        fan_in, fan_out = dims[k], dims[k + 1]
        linear = torch.nn.Linear(fan_in, fan_out).double()
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(p[offset:offset + fan_out * fan_in].reshape(fan_out, fan_in)))
            offset += fan_out * fan_in
            linear.bias.copy_(torch.from_numpy(p[offset:offset + fan_out]))
            offset += fan_out
        layers.append(linear)
        if acts[k] is not None:
            layers.append(ACTIVATIONS[acts[k].lower()]())
    assert offset == len(p), f"{offset} parameters used of {len(p)}"
    return torch.nn.Sequential(*layers)


def ntk(fnet, params, x):
    def f(params, xi):
        return fnet(params, xi.unsqueeze(0)).squeeze(0)

    jac = vmap(jacrev(f), (None, 0))(params, x)  # one tensor per parameter: d x l x shape
    d, l = x.shape[0], jac[0].shape[1]
    j = torch.cat([g.reshape(d * l, -1) for g in jac], dim=1)
    return j @ j.T


def main():
    model_path, inputs_path, d, p, out_path, threads = sys.argv[1:7]
    repeats = int(sys.argv[7]) if len(sys.argv) > 7 else 5
    if repeats < 5:
        raise SystemExit("REPEATS: every time is the median of at least 5 repeats after a warm-up")
    torch.set_num_threads(int(threads))
    with open(model_path) as f:
        model = json.load(f)
    net = build(model)
    x = torch.from_numpy(np.fromfile(inputs_path, dtype=np.float64).reshape(int(d), int(p)))
    fnet, params = make_functional(net)
    ntk(fnet, params, x)  # warm-up, not timed (its K is dropped at once)
    times, k = [], None
    for _ in range(repeats):
        k = None  # the previous K freed before the next run: the peak does not hold two of them
        start = time.perf_counter()
        k = ntk(fnet, params, x)
        times.append(time.perf_counter() - start)
    k.detach().numpy().tofile(out_path)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
    print(f"{statistics.median(times):.4f} {min(times):.4f} {max(times):.4f} {len(times)} {peak:.2f} "
          f"functorch vmap(jacrev) (torch {torch.__version__}, {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
