#!/usr/bin/python3
"""Writes the .npz fixtures of NpzSourceTests with NumPy itself (the reference writer), from the shipped digits table
and from formulas the tests recompute. Run from this folder: /usr/bin/python3 make_npz.py (NumPy 1.x or 2.x)."""
import numpy as np

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
