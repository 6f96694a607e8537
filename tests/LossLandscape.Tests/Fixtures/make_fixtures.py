#!/usr/bin/python3
"""Writes the .npz and IDX fixtures of ArrayFileSourceTests with NumPy itself (the reference writer), from the shipped
digits table and from formulas the tests recompute. Run: /usr/bin/python3 make_fixtures.py (NumPy 1.x or 2.x; from any folder)."""
import os
import numpy as np

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "npz"))

rows = np.loadtxt("../../../../src/LossLandscape/Data/Embedded/digits.csv", delimiter=",", skiprows=1, max_rows=40)
pixels = rows[:, :64].astype(np.uint8).reshape(40, 1, 8, 8)
labels = rows[:, 64].astype(np.int64)
np.savez("digits40.npz", x=pixels, y=labels)                       # stored: read per batch
np.savez_compressed("digits40_compressed.npz", x=pixels, y=labels)  # deflated: read once into memory

# x[i, j] = (5i + j) / 8 − 3 and y[i, k] = (i − 2k) / 4: exact in float32, float16 and big-endian float64 alike.
i = np.arange(30)[:, None]
x = (5 * i + np.arange(6)[None, :]) / 8.0 - 3.0
y = (i - 2 * np.arange(2)[None, :]) / 4.0
np.savez("formula_f32.npz", x=x.astype(np.float32), y=y.astype(np.float64))
np.savez("formula_f16_be.npz", x=x.astype(np.float16), y=y.astype(">f8"))
np.savez("formula_vector_y.npz", x=x.astype(np.float64), y=y[:, 0].astype(np.float32))

np.savez("fortran.npz", x=np.asfortranarray(x), y=y)
np.savez("no_y.npz", x=x, targets=y)
np.savez("short_y.npz", x=x, y=y[:29])
bad = x.copy(); bad[7, 4] = np.nan
np.savez("nan.npz", x=bad, y=y)
np.savez("negative_label.npz", x=x, y=np.arange(30) - 1)

# IDX files of the MNIST family (big-endian header: 0, 0, type 0x08, dimensions; then the sizes), plain and gzipped.
import gzip, struct, os

def idx(array):
    return struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", n) for n in array.shape) + array.astype(np.uint8).tobytes()

images, classes = pixels.reshape(40, 8, 8), labels.astype(np.uint8)
for folder, write in (("../idx/digits40", open), ("../idx/digits40gz", gzip.open)):
    for split, count in (("train", 40), ("t10k", 10)):
        ext = ".gz" if write is gzip.open else ""
        with write(f"{folder}/{split}-images-idx3-ubyte{ext}", "wb") as f:
            f.write(idx(images[:count]))
        with write(f"{folder}/{split}-labels-idx1-ubyte{ext}", "wb") as f:
            f.write(idx(classes[:count]))
with open("../idx/badmagic/train-images-idx3-ubyte", "wb") as f:
    f.write(b"\x00\x00\x08\x03" [::-1] + idx(images)[4:])
with open("../idx/badmagic/train-labels-idx1-ubyte", "wb") as f:
    f.write(idx(classes))
with open("../idx/short/train-images-idx3-ubyte", "wb") as f:
    f.write(idx(images)[:-100])
with open("../idx/short/train-labels-idx1-ubyte", "wb") as f:
    f.write(idx(classes))
