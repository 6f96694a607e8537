#!/usr/bin/env python3
"""PyTorch reference for `LossLandscape.Bench hessian` (issue 4, bench (c)).

The top-k eigenvalues (largest |λ|) of the Hessian ∇²L of L = Σ_k (f_p(x_i)_j − y_ij)² for an MLP read from a
losslandscape.mlp/1 model file, on the digits CSV with one-hot targets (classes in numeric order), float64, full
batch. Lanczos with full re-orthogonalisation (classical Gram-Schmidt, twice), the same stopping rule as the
.NET `Lanczos.Eigenpairs`: every wanted Ritz pair has β_m|s_{m,i}| ≤ tol·max|θ|; then the residuals ‖Hv − θv‖ are
verified explicitly with k more products. Hessian-vector products by double backward (torch.autograd), in two
ways: recomputing the forward pass and the gradient graph at every product, as the .NET HessianOperator does, and
reusing one gradient graph for all products, as PyHessian does.

Every time is one warm-up run, not timed, then --repeats timed runs (default 5, at least 5), reported as
{"median", "min", "max", "repeats"} in seconds.

Prints one JSON line: torch version, threads, the time and products of each Lanczos, steps, eigenvalues, and the time
of one gradient and of one HVP.

Usage: top20_lanczos.py --model model.json --data digits.csv [--start start.json] [--k 20] [--tolerance 1e-6]
                        [--threads T] [--repeats 5] [--no-reuse]
"""
import argparse
import csv
import json
import statistics
import time

import numpy as np
import torch

torch.set_default_dtype(torch.float64)


def load_model(path):
    with open(path) as f:
        spec = json.load(f)
    if spec.get("format") != "losslandscape.mlp/1":
        raise SystemExit(f"{path}: not a losslandscape.mlp/1 model")
    widths = [spec["inputDim"]] + [h["width"] for h in spec["hidden"]] + [spec["outputDim"]]
    activations = [h["activation"] for h in spec["hidden"]]
    flat = torch.tensor(spec["parameters"], dtype=torch.float64)
    params, offset = [], 0
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        w = flat[offset:offset + fan_out * fan_in].reshape(fan_out, fan_in).clone()  # W is out × in, row-major
        offset += fan_out * fan_in
        b = flat[offset:offset + fan_out].clone()
        offset += fan_out
        params += [w.requires_grad_(True), b.requires_grad_(True)]
    if offset != flat.numel():
        raise SystemExit(f"{path}: {flat.numel()} parameters, the layers need {offset}")
    scaling = spec.get("input")
    shift = torch.tensor(scaling["shift"]) if scaling else torch.zeros(widths[0])
    scale = torch.tensor(scaling["scale"]) if scaling else torch.ones(widths[0])
    return params, activations, shift, scale


ACTIVATIONS = {
    "tanh": torch.tanh,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "softplus": torch.nn.functional.softplus,
    # smooLU(x) = x·e^{−1/x} for x > 0, else 0 (the project's activation).
    "smoolu": lambda x: torch.where(x > 0, x * torch.exp(-1.0 / torch.where(x > 0, x, torch.ones_like(x))), torch.zeros_like(x)),
}


def load_digits(path, output_dim):
    with open(path) as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    target = header.index("digit")
    x = np.array([[float(v) for j, v in enumerate(r) if j != target] for r in body])
    labels = [float(r[target]) for r in body]
    classes = sorted(set(labels))  # numeric order, as DatasetLoader's one-hot
    if len(classes) != output_dim:
        raise SystemExit(f"{path}: {len(classes)} classes, the model has {output_dim} outputs")
    y = np.zeros((len(body), len(classes)))
    for i, label in enumerate(labels):
        y[i, classes.index(label)] = 1.0
    return torch.tensor(x), torch.tensor(y)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--start")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--tolerance", type=float, default=1e-6)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-reuse", action="store_true")
    args = ap.parse_args()
    if args.repeats < 5:
        ap.error("--repeats: every time is the median of at least 5 repeats after a warm-up")
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    params, activations, shift, scale = load_model(args.model)
    x, y = load_digits(args.data, params[-1].numel())
    x = (x - shift) / scale
    n = sum(p.numel() for p in params)
    sizes = [p.numel() for p in params]

    def loss():
        a = x
        for layer in range(len(activations)):
            a = ACTIVATIONS[activations[layer]](a @ params[2 * layer].t() + params[2 * layer + 1])
        h = a @ params[-2].t() + params[-1] - y
        return (h * h).sum()

    def split(v):
        return [c.view_as(p) for c, p in zip(torch.split(v, sizes), params)]

    def gradient():
        return torch.autograd.grad(loss(), params)

    def hvp_fresh(v):
        # Pearlmutter: ∇²L v = ∇⟨∇L, v⟩, the graph rebuilt for this product.
        g = torch.autograd.grad(loss(), params, create_graph=True)
        hv = torch.autograd.grad(g, params, grad_outputs=split(v))
        return torch.cat([t.reshape(-1) for t in hv]).detach()

    graph = {}

    def hvp_reuse(v):
        if "g" not in graph:
            graph["g"] = torch.autograd.grad(loss(), params, create_graph=True)
        hv = torch.autograd.grad(graph["g"], params, grad_outputs=split(v), retain_graph=True)
        return torch.cat([t.reshape(-1) for t in hv]).detach()

    if args.start:
        with open(args.start) as f:
            start = torch.tensor(json.load(f))
    else:
        start = torch.randn(n, generator=torch.Generator().manual_seed(0))

    def lanczos(apply, k, tol):
        m = min(n, max(100, 10 * k))
        q = torch.zeros(n, m)
        q[:, 0] = start / start.norm()
        alpha, beta = [], []
        size, products = 1, 0
        while True:
            j = size - 1
            w = apply(q[:, j])
            products += 1
            a = float(w @ q[:, j])
            w = w - a * q[:, j]
            if j > 0 and beta[j - 1] != 0:
                w = w - beta[j - 1] * q[:, j - 1]
            basis = q[:, :size]
            for _ in range(2):  # classical Gram-Schmidt twice ("twice is enough")
                w = w - basis @ (basis.t() @ w)
            b = float(w.norm())
            alpha.append(a)
            beta.append(b)
            t = torch.diag(torch.tensor(alpha))
            if size > 1:
                off = torch.tensor(beta[:size - 1])
                t = t + torch.diag(off, 1) + torch.diag(off, -1)
            theta, s = torch.linalg.eigh(t)
            wanted = sorted(range(size), key=lambda i: (-abs(float(theta[i])), -float(theta[i])))[:k]
            scale_ = float(theta.abs().max())
            converged = size >= k and all(b * abs(float(s[size - 1, i])) <= tol * scale_ for i in wanted)
            if converged or size >= m or b == 0:
                break
            q[:, size] = w / b
            size += 1
        values = theta[wanted]
        vectors = q[:, :size] @ s[:, wanted]
        residuals = []
        for i in range(len(wanted)):  # verify explicitly: k more products
            residuals.append(float((apply(vectors[:, i]) - values[i] * vectors[:, i]).norm()))
            products += 1
        return [float(v) for v in values], residuals, size, products, converged

    def timed(f):
        """One warm-up run of f, then args.repeats timed runs: (timing, the last run's result)."""
        f()
        times, last = [], None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            last = f()
            times.append(time.perf_counter() - t0)
        return {"median": statistics.median(times), "min": min(times), "max": max(times), "repeats": len(times)}, last

    v = torch.randn(n, generator=torch.Generator().manual_seed(7))
    gradient_seconds, _ = timed(gradient)
    hvp_seconds, _ = timed(lambda: hvp_fresh(v))

    seconds, (values, residuals, steps, products, converged) = timed(lambda: lanczos(hvp_fresh, args.k, args.tolerance))
    result = {
        "torch": torch.__version__, "threads": torch.get_num_threads(), "n": n,
        "seconds": seconds, "hvps": products, "steps": steps, "converged": converged,
        "eigenvalues": values, "max_rel_residual": max(residuals) / abs(values[0]),
        "gradient_seconds": gradient_seconds, "hvp_seconds": hvp_seconds,
    }
    if not args.no_reuse:
        def reuse_run():
            graph.clear()  # each run builds its one gradient graph, as one PyHessian run does
            return lanczos(hvp_reuse, args.k, args.tolerance)

        reuse_seconds, (_, _, _, reuse_products, _) = timed(reuse_run)
        result["reuse_seconds"] = reuse_seconds
        result["reuse_hvps"] = reuse_products
    print(json.dumps(result))


if __name__ == "__main__":
    main()
