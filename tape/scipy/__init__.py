"""``tape.scipy``: scipy functions on tensors, for the few that do not reach tape by themselves.

scipy.special's ufuncs dispatch to tape on their own (``scipy.special.gammaln(t)`` is recorded); its plain
Python functions (``logsumexp``, ``softmax``, ...) convert their arguments to arrays, which a tensor that
requires grad refuses. ``tape.scipy.special`` holds differentiable twins of those, with scipy's signatures.
Import it by name (``import tape.scipy.special``): this package imports neither it nor scipy, and
``import tape`` does not import this package.
"""
