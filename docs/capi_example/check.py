"""Run the example's functions and compare them with fastloss's Python API, bit for bit.

    pip install --no-build-isolation .   # in docs/capi_example, with fastloss installed
    python check.py

(tools/check_wheel.py runs exactly this against the built wheel.)
"""
import numpy as np

import capi_example
import fastloss
import fastloss.api

rng = np.random.default_rng(0)

x, t = rng.normal(size=1000), rng.normal(size=1000)
grad = np.empty_like(x)
value = capi_example.mse_value_and_grad(x, t, grad)
v, g = fastloss.MSE().value_and_grad(x, t)
assert value == v and grad.tobytes() == g.tobytes()

logits = rng.normal(size=(50_000, 5))
labels = rng.integers(0, 5, 50_000)
grad, hess = np.empty_like(logits), np.empty_like(logits)
capi_example.multiclass_objective(logits, labels, grad, hess)
g, h = fastloss.CrossEntropy().grad_hess(logits, labels, reduction="sum")
assert grad.tobytes() == g.tobytes() and hess.tobytes() == h.tobytes()
try:
    capi_example.multiclass_objective(logits, np.full(50_000, 7), grad, hess)
except ValueError as e:
    assert "class label" in str(e), e
else:
    raise AssertionError("a bad label was not reported")

x32 = rng.normal(size=(300, 4)).astype(np.float32)
t32 = rng.normal(size=(300, 4)).astype(np.float32)
w32 = rng.uniform(0, 2, 300).astype(np.float32)
grad32 = np.empty_like(x32)
value = capi_example.weighted_pseudo_huber(x32, t32, w32, 0.5, grad32)
v, g = fastloss.PseudoHuber(delta=0.5).value_and_grad(x32, t32, sample_weight=w32)
assert value == v and grad32.tobytes() == g.tobytes()

print(f"capi_example OK: fastloss {fastloss.__version__}, C API level "
      f"{fastloss.api.level}, results equal to the Python API's")
