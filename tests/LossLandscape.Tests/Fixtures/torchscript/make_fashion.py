#!/usr/bin/python3
"""Trains the two Fashion-MNIST CNNs of the tests in PyTorch and writes PyTorch's float64 numbers for them.

Run once with Debian's python3-torch (1.13) and dataset-fashion-mnist: /usr/bin/python3 make_fashion.py (here).

Files:
  fashion_a.pt, fashion_b.pt   torch.jit.script of the same CNN (conv 5x5 -> relu -> max pool, conv 5x5 -> relu -> max
                               pool, flatten, linear), trained from two seeds for one epoch of Adam on the 60,000 training
                               images in float32, saved in float32 and in eval mode. No batch norm: a path between two
                               networks moves their parameters, and two trained networks' running statistics differ
                               (the batch-norm fixture is make_torchscript.py's).
  fashion_reference.json       on the first 200 training images (pixels / 255, float64; the model in float64, eval mode):
                               the cross-entropy (mean), the gradient's norm, the top three Hessian eigenvalues and the
                               trace, both of the dense Hessian (n double-backward products with the unit vectors,
                               symmetrised, torch.linalg.eigvalsh), for each network.
"""
import gzip
import json

import numpy as np
import torch
from torch import nn

ROOT = "/usr/share/datasets/fashion-mnist"
ROWS = 200


def idx(name):
    with gzip.open(f"{ROOT}/{name}", "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * k:8 + 4 * k], "big") for k in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


images = torch.from_numpy(idx("train-images-idx3-ubyte.gz").astype(np.float64) / 255.0).unsqueeze(1)
labels = torch.from_numpy(idx("train-labels-idx1-ubyte.gz").astype(np.int64))


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 12, 5)
        self.fc = nn.Linear(192, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)              # 6 x 12 x 12
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)              # 12 x 4 x 4
        return self.fc(torch.flatten(x, 1))


def train(seed):
    torch.manual_seed(seed)
    net = Cnn()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    order = torch.randperm(images.shape[0])
    x32 = images.float()
    net.train()
    for start in range(0, images.shape[0], 128):
        batch = order[start:start + 128]
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x32[batch]), labels[batch])
        loss.backward()
        opt.step()
    net.eval()
    return net


def measure(net):
    model = Cnn().double()
    model.load_state_dict({k: v.double() for k, v in net.state_dict().items()})
    model.eval()
    params = [p for p in model.parameters()]
    n = sum(p.numel() for p in params)
    x, y = images[:ROWS], labels[:ROWS]
    loss = nn.functional.cross_entropy(model(x), y)
    grads = torch.autograd.grad(loss, params, create_graph=True)
    g = torch.cat([t.reshape(-1) for t in grads])

    def hvp(v):
        hv = torch.autograd.grad(g, params, grad_outputs=v, retain_graph=True)
        return torch.cat([t.reshape(-1) for t in hv])

    hessian = torch.empty(n, n, dtype=torch.float64)
    for i in range(n):
        e = torch.zeros(n, dtype=torch.float64)
        e[i] = 1.0
        hessian[i] = hvp(e)
    hessian = (hessian + hessian.T) / 2
    top = torch.linalg.eigvalsh(hessian).flip(0)[:3].tolist()
    trace = hessian.diagonal().sum().item()
    return {"n": n, "loss": loss.item(), "gradientNorm": g.norm().item(), "topEigenvalues": top, "trace": trace}


reference = {"torch": torch.__version__, "rows": ROWS, "source": "builtin:fashion-mnist (train split, first rows)"}
for name, seed in (("fashion_a", 1), ("fashion_b", 2)):
    net = train(seed)
    torch.jit.script(net).save(f"{name}.pt")
    reference[name] = measure(net)
    print(name, reference[name])
with open("fashion_reference.json", "w") as f:
    json.dump(reference, f, indent=1)
