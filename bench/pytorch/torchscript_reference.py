#!/usr/bin/env python3
"""PyTorch reference for `LossLandscape.Bench torchscript` (issue 21 §4).

The TorchScript module given by --model, loaded with torch.jit.load, converted to float64 (.double()) and put in eval
mode, on the first --rows training images of Fashion-MNIST read from the gzipped IDX files (pixels / 255 in float64,
shape [rows, 1, 28, 28]; integer labels), under the mean cross-entropy (torch.nn.functional.cross_entropy, what
CrossEntropyLoss() computes). It computes, all in float64:

  - the loss L and the gradient ∇L (torch.autograd.grad);
  - one Hessian-vector product ∇²L v (double backward: ∇⟨∇L, v⟩) with the vector v read from --vector (n float64
    values, little-endian, as the bench writes them);
  - the top eigenvalue by power iteration exactly as PyHessian's hessian.eigenvalues(maxIter=100, tol=1e-3, top_n=1)
    runs it: a normal random start normalised (‖v‖ + 1e-6), λ the Rayleigh quotient vᵀHv of each product, v ← Hv
    normalised, stop when |λ_new − λ_old|/(|λ_old| + 1e-6) < tol, returning λ_old, at most maxIter products;
    with --tight it is run a second time from the same start to tol 1e-10, 1000 iterations (--tight-tolerance,
    --tight-max-iterations) and on, if need be, until ‖Hv − ρv‖ ≤ 1e-6·|ρ| (--residual-tolerance; the test the .NET
    Lanczos passes; the products when each test first held are both reported); the reference value is the Rayleigh
    quotient ρ = vᵀHv/vᵀv of its last product, with that product's residual ‖Hv − ρv‖/‖v‖ (PyHessian's own value,
    vᵀHv without dividing by vᵀv, is reported beside it: its normalisation leaves ‖v‖ = 1/(1 + 1e-6), so it is low by
    about 2e-6 relative); every run lists ρ and the relative residual of each of its products (rayleigh_history,
    residual_history), from which the bench reads how many products power iteration needs for a given accuracy;
  - the trace by Hutchinson's estimator exactly as PyHessian's hessian.trace(maxIter=100, tol=1e-3): Rademacher probes,
    stop when the running mean changes by less than tol relative (|mean_new − mean_old|/(|mean_old| + 1e-6) < tol), at
    most maxIter probes; the estimate is the mean, reported with its standard error s/√N.

The power iteration and the trace reuse one gradient graph for every product, as PyHessian does for one batch
(grads with create_graph once, then autograd.grad(g, params, v, retain_graph=True)); the products are counted.

Times (each one warm-up run, not timed, then --repeats timed runs, at least 5; {"median", "min", "max", "repeats"} in
seconds): one gradient; one HVP reusing the gradient graph (PyHessian's way, the graph built once before the runs);
one HVP rebuilding it (forward, gradient with create_graph, double backward: what one product costs from scratch).

Prints one JSON line on stdout.

Usage: torchscript_reference.py --model net.pt --vector v.f64 [--data-dir /usr/share/datasets/fashion-mnist]
                                [--rows 1000] [--threads T] [--repeats 5] [--seed 0] [--tight]
                                [--tight-tolerance 1e-10] [--tight-max-iterations 1000] [--residual-tolerance 1e-6]
"""
import argparse
import gzip
import json
import math
import os
import statistics
import time

import numpy as np
import torch

torch.set_default_dtype(torch.float64)


def read_idx(path, count):
    """The first `count` items of a gzipped IDX file (big-endian header: magic, then one uint32 per dimension)."""
    with gzip.open(path, "rb") as f:
        magic = f.read(4)
        if magic[0] != 0 or magic[1] != 0 or magic[2] != 0x08:
            raise SystemExit(f"{path}: not an IDX file of unsigned bytes")
        dims = [int.from_bytes(f.read(4), "big") for _ in range(magic[3])]
        if count > dims[0]:
            raise SystemExit(f"{path}: {dims[0]} items, {count} asked for")
        per_item = int(np.prod(dims[1:])) if len(dims) > 1 else 1
        body = f.read(count * per_item)
    return np.frombuffer(body, dtype=np.uint8).reshape([count] + dims[1:])


def timing(seconds):
    return {"median": statistics.median(seconds), "min": min(seconds), "max": max(seconds), "repeats": len(seconds)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--vector", required=True)
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--power-max-iterations", type=int, default=100)  # PyHessian's eigenvalues(maxIter=100)
    ap.add_argument("--power-tolerance", type=float, default=1e-3)  # PyHessian's eigenvalues(tol=1e-3)
    ap.add_argument("--trace-max-iterations", type=int, default=100)  # PyHessian's trace(maxIter=100)
    ap.add_argument("--trace-tolerance", type=float, default=1e-3)  # PyHessian's trace(tol=1e-3)
    ap.add_argument("--tight", action="store_true")
    ap.add_argument("--tight-tolerance", type=float, default=1e-10)
    ap.add_argument("--tight-max-iterations", type=int, default=1000)
    ap.add_argument("--residual-tolerance", type=float, default=1e-6)
    args = ap.parse_args()
    if args.repeats < 5:
        ap.error("--repeats: every time is the median of at least 5 repeats after a warm-up")
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    model = torch.jit.load(args.model).double().eval()
    params = [p for p in model.parameters() if p.requires_grad]
    sizes = [p.numel() for p in params]
    n = sum(sizes)

    images = read_idx(os.path.join(args.data_dir, "train-images-idx3-ubyte.gz"), args.rows)
    labels = read_idx(os.path.join(args.data_dir, "train-labels-idx1-ubyte.gz"), args.rows)
    x = torch.from_numpy(images.astype(np.float64) / 255.0).unsqueeze(1)  # [rows, 1, 28, 28]
    y = torch.from_numpy(labels.astype(np.int64))

    v = torch.from_numpy(np.fromfile(args.vector, dtype="<f8"))
    if v.numel() != n:
        raise SystemExit(f"{args.vector}: {v.numel()} values, the module has n = {n} parameters")

    def flat(tensors):
        return torch.cat([t.reshape(-1) for t in tensors])

    def split(vector):
        return [c.view_as(p) for c, p in zip(torch.split(vector, sizes), params)]

    def loss():
        return torch.nn.functional.cross_entropy(model(x), y)

    def gradient():
        return torch.autograd.grad(loss(), params)

    def hvp_rebuild(vector):
        # Pearlmutter: ∇²L v = ∇⟨∇L, v⟩, the forward pass and the gradient graph built for this product.
        g = torch.autograd.grad(loss(), params, create_graph=True)
        return torch.autograd.grad(g, params, grad_outputs=vector)

    graph = torch.autograd.grad(loss(), params, create_graph=True)  # PyHessian: loss.backward(create_graph=True) once

    def hvp_reuse(vector):
        return torch.autograd.grad(graph, params, grad_outputs=vector, retain_graph=True)

    def timed(f):
        f()
        seconds = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            f()
            seconds.append(time.perf_counter() - t0)
        return timing(seconds)

    with torch.no_grad():
        value = float(loss())
    grad = flat(gradient())
    hv = flat(hvp_rebuild(split(v)))
    hv_reuse = flat(hvp_reuse(split(v)))

    def dot(xs, ys):
        return sum(float(torch.sum(a * b)) for a, b in zip(xs, ys))

    def normalized(vs):
        s = math.sqrt(dot(vs, vs))
        return [t / (s + 1e-6) for t in vs]  # PyHessian's normalization: v / (‖v‖ + 1e-6)

    def power_iteration(max_iterations, tolerance, residual_tolerance=None):
        """PyHessian's power iteration; with residual_tolerance it goes on after PyHessian's rule has stopped it (whose
        value and products are kept) until ‖Hv − ρv‖ ≤ residual_tolerance·|ρ|, the test the .NET Lanczos passes."""
        torch.manual_seed(args.seed)
        vs = normalized([torch.randn(p.size()) for p in params])
        eigenvalue, products, converged, rule_products = None, 0, False, None
        residual_products = None
        rayleigh, residual, history, residuals = float("nan"), float("nan"), [], []
        for _ in range(max_iterations):
            vs = normalized(vs)  # orthnormal(v, []) with no eigenvectors found yet
            hvs = hvp_reuse(vs)
            products += 1
            current = dot(hvs, vs)  # PyHessian's eigenvalue: vᵀHv with ‖v‖ = 1/(1 + 1e-6), not divided by vᵀv
            # The Rayleigh quotient proper, vᵀHv/vᵀv, and the residual ‖Hv − ρv‖/‖v‖ of this product (an eigenvalue lies
            # within it of ρ), for the reference value; PyHessian's own value is low by about 2e-6 relative, because its
            # normalization divides a unit vector by 1 + 1e-6 again before each product.
            vv = dot(vs, vs)
            rayleigh = current / vv
            residual = math.sqrt(sum(float(torch.sum((h - rayleigh * t) ** 2)) for h, t in zip(hvs, vs)) / vv)
            history.append(rayleigh)
            residuals.append(residual / abs(rayleigh))
            vs = normalized([t.detach() for t in hvs])
            if residual_tolerance is not None and residual_products is None and residual <= residual_tolerance * abs(rayleigh):
                residual_products = products
            if not converged:
                if eigenvalue is None:
                    eigenvalue = current
                elif abs(eigenvalue - current) / (abs(eigenvalue) + 1e-6) < tolerance:
                    converged, rule_products = True, products  # PyHessian stops here and returns the previous value
                else:
                    eigenvalue = current
            if converged and (residual_tolerance is None or residual_products is not None):
                break
        return {"eigenvalue": eigenvalue, "hvps": rule_products if converged else products, "converged": converged,
                "tolerance": tolerance, "max_iterations": max_iterations,
                "rayleigh": rayleigh, "residual": residual, "total_hvps": products,
                "residual_tolerance": residual_tolerance, "residual_hvps": residual_products,
                "rayleigh_history": history, "residual_history": residuals}

    def hutchinson(max_iterations, tolerance):
        torch.manual_seed(args.seed)
        samples, trace, converged = [], 0.0, False
        for _ in range(max_iterations):
            zs = [torch.randint_like(p, high=2) for p in params]
            for z in zs:
                z[z == 0] = -1  # Rademacher
            samples.append(dot(hvp_reuse(zs), zs))
            mean = float(np.mean(samples))
            if abs(mean - trace) / (abs(trace) + 1e-6) < tolerance:
                converged = True
                break
            trace = mean
        mean = float(np.mean(samples))
        error = float(np.std(samples, ddof=1) / math.sqrt(len(samples))) if len(samples) > 1 else float("inf")
        return {"trace": mean, "standard_error": error, "hvps": len(samples), "converged": converged,
                "tolerance": tolerance, "max_iterations": max_iterations}

    result = {
        "torch": torch.__version__, "threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
        "n": n, "rows": args.rows, "loss": value,
        "gradient": grad.tolist(), "hvp": hv.tolist(),
        "hvp_reuse_vs_rebuild": float((hv_reuse - hv).norm() / hv.norm()),
        "power": power_iteration(args.power_max_iterations, args.power_tolerance),
        "trace": hutchinson(args.trace_max_iterations, args.trace_tolerance),
    }
    if args.tight:
        result["power_tight"] = power_iteration(args.tight_max_iterations, args.tight_tolerance, args.residual_tolerance)
    vs = split(v)
    result["gradient_seconds"] = timed(gradient)
    result["hvp_reuse_seconds"] = timed(lambda: hvp_reuse(vs))
    result["hvp_rebuild_seconds"] = timed(lambda: hvp_rebuild(vs))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
