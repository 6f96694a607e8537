#!/usr/bin/python3
"""Writes the TorchScript fixtures of TorchScriptTests, with PyTorch's own numbers for them.

Run once with Debian's python3-torch (1.13): /usr/bin/python3 make_torchscript.py (in this directory).
The suite needs no PyTorch: it reads what this script wrote.

Files:
  cnn_scripted.pt  torch.jit.script of a CNN (conv, batch norm with running statistics, relu, max pool,
                   conv, tanh, avg pool, flatten, linear), parameters saved in float32 as PyTorch trains them.
  cnn_traced.pt    torch.jit.trace of the same network (same parameters).
  cnn_seq.json     the same network as a losslandscape.seq/1 file: the float32 values as float64 (exact).
  rows.npz         x (16, 1, 8, 8) float64 inputs and y (16,) int64 class labels.
  reference.json   PyTorch's values in float64 (model.double()): outputs, cross-entropy (mean), MSE (mean,
                   one-hot targets), their gradients, one Hessian-vector product of each by double backward
                   with the vector v stored here, all in named_parameters() order.
"""
import json

import numpy as np
import torch
from torch import nn

torch.manual_seed(20261207)


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 6, 3)
        self.fc = nn.Linear(6, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)   # 4 x 4 x 4
        x = torch.tanh(self.conv2(x))                                    # 6 x 2 x 2
        x = nn.functional.avg_pool2d(x, 2)                                       # 6 x 1 x 1
        return self.fc(torch.flatten(x, 1))


net = Cnn()
# Batch-norm statistics as a trained network has them (not the fresh 0 and 1), and a non-trivial gamma and beta.
with torch.no_grad():
    net.bn1.running_mean.copy_(torch.randn(4) * 0.3)
    net.bn1.running_var.copy_(torch.rand(4) + 0.5)
    net.bn1.weight.copy_(torch.rand(4) + 0.5)
    net.bn1.bias.copy_(torch.randn(4) * 0.1)
net.eval()

x = torch.rand(16, 1, 8, 8, dtype=torch.float64)
y = torch.randint(0, 10, (16,))
torch.jit.script(net).save("cnn_scripted.pt")
torch.jit.trace(net, x.float()[:2]).save("cnn_traced.pt")
np.savez("rows.npz", x=x.numpy(), y=y.numpy())

flat = [float(v) for _, p in net.named_parameters() for v in p.detach().double().reshape(-1).tolist()]
seq = {
    "format": "losslandscape.seq/1",
    "inputShape": [1, 8, 8],
    "layers": [
        {"type": "conv2d", "out": 4, "kernel": 3, "stride": 1, "padding": 1},
        {"type": "batchnorm", "eps": net.bn1.eps,
         "runningMean": [float(v) for v in net.bn1.running_mean.double().tolist()],
         "runningVar": [float(v) for v in net.bn1.running_var.double().tolist()]},
        {"type": "relu"},
        {"type": "maxpool2d", "kernel": 2, "stride": 2},
        {"type": "conv2d", "out": 6, "kernel": 3, "stride": 1, "padding": 0},
        {"type": "tanh"},
        {"type": "avgpool2d", "kernel": 2, "stride": 2},
        {"type": "flatten"},
        {"type": "linear", "out": 10},
    ],
    "outputs": 10,
    "parameters": flat,
}
with open("cnn_seq.json", "w") as f:
    json.dump(seq, f, indent=1)

model = net.double()
params = [p for _, p in model.named_parameters()]
v = torch.randn(sum(p.numel() for p in params), dtype=torch.float64)


def derivatives(loss):
    grads = torch.autograd.grad(loss, params, create_graph=True)
    g = torch.cat([t.reshape(-1) for t in grads])
    gv = (g * v).sum()
    hv = torch.autograd.grad(gv, params)
    return g.detach(), torch.cat([t.reshape(-1) for t in hv]).detach()


out = model(x)
ce = nn.CrossEntropyLoss()(out, y)
ce_grad, ce_hvp = derivatives(ce)
out = model(x)
mse = nn.MSELoss()(out, nn.functional.one_hot(y, 10).double())
mse_grad, mse_hvp = derivatives(mse)
reference = {
    "torch": torch.__version__,
    "names": [name for name, _ in model.named_parameters()],
    "n": len(flat),
    "outputs": model(x).detach().reshape(-1).tolist(),
    "crossEntropy": ce.item(),
    "crossEntropyGradient": ce_grad.tolist(),
    "crossEntropyHvp": ce_hvp.tolist(),
    "mse": mse.item(),
    "mseGradient": mse_grad.tolist(),
    "mseHvp": mse_hvp.tolist(),
    "v": v.tolist(),
}
with open("reference.json", "w") as f:
    json.dump(reference, f)
print(f"n = {len(flat)}, cross-entropy {ce.item():.17g}, mse {mse.item():.17g}")
