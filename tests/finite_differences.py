"""Central differences for the gradient tests of the recurrent cells."""

import numpy as np


def central_differences(loss, arrays, step=1e-6):
    """The gradient of `loss()` with respect to each array of `arrays`, by central differences:
    each element is moved by `step` both ways in place (and put back)."""
    grads = []
    for a in arrays:
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            orig = a[idx]
            a[idx] = orig + step
            up = loss()
            a[idx] = orig - step
            down = loss()
            a[idx] = orig
            g[idx] = (up - down) / (2 * step)
        grads.append(g)
    return grads
