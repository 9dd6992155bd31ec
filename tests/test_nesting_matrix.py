"""Every pair of transforms, and triples covering every transform at every depth, nested and checked.

A *level* turns a function ``g(x, y)`` (returning a tree of arrays) into another function of ``(x, y)``:
it reduces ``g``'s output to a scalar (or a small vector or dict) with a fixed smooth map, then applies one
transform (``grad``, ``jacobian``, ``jvp``, ...), possibly through a closure over ``x`` or ``y``. A chain of
levels, outermost first, is applied to a smooth base function that mixes ``x`` and ``y`` so that every
mixed partial of every order is nonzero.

Each level is written once against a small namespace of math functions and transforms (``Backend``), so
the same chain is built three ways:

- with ``tape``, the engine under test;
- with finite differences for the outermost level only, applied to the ``tape`` chain one level shallower
  (evaluated at top level, where every transform sees plain arrays): the nested result must be the
  derivative of the shallower one, in JAX's layout;
- with ``torch.func``, when PyTorch is installed, compared on the whole chain's value.

This file checks the transforms; it does not test individual ops (``tests/ops``) nor fix any layout other
than JAX's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import tape

X = np.array([0.3, -0.7])
Y = np.array([0.4, 1.1, -0.5])
TANGENT_X = np.array([0.8, -0.3])
TANGENT_Y = np.array([-0.4, 0.6, 0.9])
COTANGENT = np.array([0.7, -1.2])

FIRST_ORDER_STEP = 1e-5
SECOND_ORDER_STEP = 1e-4


# -- trees ----------------------------------------------------------------------------------------------
def tree_leaves(tree: Any) -> list[Any]:
    """The leaves of a tree of tuples, lists and dicts (keys sorted), as JAX orders them."""
    if isinstance(tree, dict):
        return [leaf for key in sorted(tree) for leaf in tree_leaves(tree[key])]
    if isinstance(tree, tuple | list):
        return [leaf for item in tree for leaf in tree_leaves(item)]
    return [tree]


def tree_like(template: Any, leaves: list[Any]) -> Any:
    """A tree shaped as ``template`` holding ``leaves`` in order."""
    remaining = iter(leaves)

    def build(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: build(node[key]) for key in sorted(node)}
        if isinstance(node, tuple | list):
            return type(node)(build(item) for item in node)
        return next(remaining)

    return build(template)


def tree_structure(tree: Any) -> Any:
    return tree_like(tree, [None] * len(tree_leaves(tree)))


def shape_of(leaf: Any) -> tuple[int, ...]:
    return tuple(getattr(leaf, "shape", ()))


# -- backends: the math and the transforms the levels are written against --------------------------------
@dataclass(frozen=True)
class Backend:
    sin: Callable[[Any], Any]
    cos: Callable[[Any], Any]
    exp: Callable[[Any], Any]
    sum: Callable[[Any], Any]
    constant: Callable[[np.ndarray], Any]
    grad: Callable[..., Any]
    value_and_grad: Callable[..., Any]
    jacobian: Callable[..., Any]
    hessian: Callable[..., Any]
    jvp: Callable[..., Any]
    vjp: Callable[..., Any]
    hvp: Callable[..., Any]
    checkpoint: Callable[..., Any]


TAPE = Backend(
    sin=np.sin,
    cos=np.cos,
    exp=np.exp,
    sum=np.sum,
    constant=np.asarray,
    grad=tape.grad,
    value_and_grad=tape.value_and_grad,
    jacobian=tape.jacobian,
    hessian=tape.hessian,
    jvp=tape.jvp,
    vjp=tape.vjp,
    hvp=tape.hvp,
    checkpoint=tape.checkpoint,
)


def _plain(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def _shifted(args: tuple[Any, ...], directions: tuple[Any, ...], scale: float) -> tuple[Any, ...]:
    return tuple(
        _plain(arg) + scale * _plain(direction) for arg, direction in zip(args, directions, strict=True)
    )


def _unit(args: tuple[Any, ...], wrt: int, index: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """The direction of one entry of ``args[wrt]``, zero in every other argument."""
    directions = tuple(np.zeros_like(_plain(arg)) for arg in args)
    directions[wrt][index] = 1.0
    return directions


def directional_difference(
    function: Callable[..., Any], args: tuple[Any, ...], direction: tuple[Any, ...]
) -> Any:
    """The derivative of ``function`` at ``args`` along ``direction``, by central differences (a tree)."""
    step = FIRST_ORDER_STEP
    ahead = tree_leaves(function(*_shifted(args, direction, step)))
    behind = tree_leaves(function(*_shifted(args, direction, -step)))
    slopes = [(_plain(a) - _plain(b)) / (2 * step) for a, b in zip(ahead, behind, strict=True)]
    return tree_like(function(*args), slopes)


def mixed_second_difference(
    function: Callable[..., Any], args: tuple[Any, ...], first: tuple[Any, ...], second: tuple[Any, ...]
) -> float:
    """d2 function / d first d second of a scalar function at ``args``, by central differences."""
    step = SECOND_ORDER_STEP

    def at(a: float, b: float) -> float:
        moved = _shifted(_shifted(args, first, a * step), second, b * step)
        return float(_plain(function(*moved)))

    return (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1)) / (4 * step**2)


def finite_jacobian(function: Callable[..., Any], args: tuple[Any, ...], wrt: int) -> Any:
    """d function / d args[wrt]: the output's tree, each leaf of shape (leaf shape + argument shape)."""
    shape = _plain(args[wrt]).shape
    columns = [
        tree_leaves(directional_difference(function, args, _unit(args, wrt, index)))
        for index in np.ndindex(shape)
    ]
    template = function(*args)
    blocks = [
        np.stack([column[k] for column in columns], axis=-1).reshape(shape_of(_plain(leaf)) + shape)
        for k, leaf in enumerate(tree_leaves(template))
    ]
    return tree_like(template, blocks)


def finite_grad(function: Callable[..., Any], argnums: int | tuple[int, ...] = 0) -> Callable[..., Any]:
    def gradient(*args: Any) -> Any:
        if isinstance(argnums, int):
            return finite_jacobian(function, args, argnums)
        return tuple(finite_jacobian(function, args, number) for number in argnums)

    return gradient


def finite_value_and_grad(function: Callable[..., Any], argnums: int = 0) -> Callable[..., Any]:
    return lambda *args: (function(*args), finite_grad(function, argnums)(*args))


def finite_jacobian_transform(
    function: Callable[..., Any], argnums: int | tuple[int, ...] = 0
) -> Callable[..., Any]:
    def jacobian(*args: Any) -> Any:
        if isinstance(argnums, int):
            return finite_jacobian(function, args, argnums)
        per_argument = [tree_leaves(finite_jacobian(function, args, number)) for number in argnums]
        leaves = [tuple(blocks[k] for blocks in per_argument) for k in range(len(per_argument[0]))]
        return tree_like(function(*args), leaves)

    return jacobian


def finite_hessian(function: Callable[..., Any], argnums: int = 0) -> Callable[..., Any]:
    def hessian(*args: Any) -> np.ndarray:
        shape = _plain(args[argnums]).shape
        entries = [
            mixed_second_difference(function, args, _unit(args, argnums, i), _unit(args, argnums, j))
            for i in np.ndindex(shape)
            for j in np.ndindex(shape)
        ]
        return np.reshape(entries, shape + shape)

    return hessian


def finite_jvp(function: Callable[..., Any], primals: tuple[Any, ...], tangents: tuple[Any, ...]) -> Any:
    return function(*primals), directional_difference(function, primals, tangents)


def finite_vjp(function: Callable[..., Any], *primals: Any) -> tuple[Any, Callable[[Any], Any]]:
    def pullback(cotangent: Any) -> tuple[Any, ...]:
        def pairing(*args: Any) -> Any:
            outputs = tree_leaves(function(*args))
            return sum(
                np.sum(_plain(c) * _plain(o)) for c, o in zip(tree_leaves(cotangent), outputs, strict=True)
            )

        return tuple(finite_jacobian(pairing, primals, number) for number in range(len(primals)))

    return function(*primals), pullback


def finite_hvp(function: Callable[..., Any], primals: tuple[Any, ...], tangents: tuple[Any, ...]) -> Any:
    return tuple(
        np.reshape(
            [
                mixed_second_difference(function, primals, _unit(primals, number, index), tangents)
                for index in np.ndindex(_plain(primal).shape)
            ],
            _plain(primal).shape,
        )
        for number, primal in enumerate(primals)
    )


FINITE = Backend(
    sin=np.sin,
    cos=np.cos,
    exp=np.exp,
    sum=np.sum,
    constant=np.asarray,
    grad=finite_grad,
    value_and_grad=finite_value_and_grad,
    jacobian=finite_jacobian_transform,
    hessian=finite_hessian,
    jvp=finite_jvp,
    vjp=finite_vjp,
    hvp=finite_hvp,
    checkpoint=lambda function, *args: function(*args),
)


def torch_backend(torch: Any) -> Backend:
    func = torch.func

    def value_and_grad(function: Callable[..., Any], argnums: int = 0) -> Callable[..., Any]:
        both = func.grad_and_value(function, argnums)

        def swapped(*args: Any) -> Any:
            gradient, value = both(*args)
            return value, gradient

        return swapped

    def hvp(function: Callable[..., Any], primals: tuple[Any, ...], tangents: tuple[Any, ...]) -> Any:
        gradient = func.grad(function, tuple(range(len(primals))))
        return func.jvp(gradient, tuple(primals), tuple(tangents))[1]

    return Backend(
        sin=torch.sin,
        cos=torch.cos,
        exp=torch.exp,
        sum=torch.sum,
        constant=lambda array: torch.tensor(array, dtype=torch.float64),
        grad=func.grad,
        value_and_grad=value_and_grad,
        jacobian=func.jacrev,
        hessian=func.hessian,
        jvp=lambda function, primals, tangents: func.jvp(function, tuple(primals), tuple(tangents)),
        vjp=func.vjp,
        hvp=hvp,
        checkpoint=lambda function, *args: function(*args),
    )


# -- the base function, the maps between levels, and the levels -------------------------------------------
def base(ops: Backend, x: Any, y: Any) -> Any:
    """A tuple (vector of shape (3,), scalar) mixing x and y through sin, cos, exp and products."""
    wave = ops.sin(x[0] * y + x[1]) * ops.exp(0.3 * x[1] * y)
    ring = ops.cos(ops.sum(x * x) * y[0] + x[0] * y[2])
    return wave, ring


def scalar(ops: Backend, tree: Any) -> Any:
    """sum over leaves k of sum(sin(leaf * weights + 0.2 (k + 1))), fixed weights of each leaf's shape."""
    total: Any = 0.0
    for k, leaf in enumerate(tree_leaves(tree)):
        shape = shape_of(leaf)
        weights = ops.constant(np.linspace(0.6, 1.4, int(np.prod(shape))).reshape(shape))
        total = total + ops.sum(ops.sin(leaf * weights + 0.2 * (k + 1)))
    return total


def vector(ops: Backend, tree: Any, x: Any, y: Any) -> Any:
    """A vector of shape (2,) depending on the tree through its scalar map, and on x and y."""
    return ops.sin(scalar(ops, tree) * x + y[1:])


Function = Callable[[Any, Any], Any]


def level_grad_x(ops: Backend, inner: Function) -> Function:
    return lambda x, y: ops.grad(lambda a, b: scalar(ops, inner(a, b)), 0)(x, y)


def level_grad_y(ops: Backend, inner: Function) -> Function:
    return lambda x, y: ops.grad(lambda a, b: scalar(ops, inner(a, b)), 1)(x, y)


def level_grad_xy(ops: Backend, inner: Function) -> Function:
    return lambda x, y: ops.grad(lambda a, b: scalar(ops, inner(a, b)), (0, 1))(x, y)


def level_value_and_grad_y(ops: Backend, inner: Function) -> Function:
    return lambda x, y: ops.value_and_grad(lambda a, b: scalar(ops, inner(a, b)), 1)(x, y)


def level_jacobian_x(ops: Backend, inner: Function) -> Function:
    return lambda x, y: ops.jacobian(lambda a, b: vector(ops, inner(a, b), a, b), 0)(x, y)


def level_jacobian_xy_of_dict(ops: Backend, inner: Function) -> Function:
    def outputs(a: Any, b: Any) -> dict[str, Any]:
        value = scalar(ops, inner(a, b))
        return {"scaled": value * b, "wave": ops.cos(value + a)}

    return lambda x, y: ops.jacobian(outputs, (0, 1))(x, y)


def level_hessian_x(ops: Backend, inner: Function) -> Function:
    return lambda x, y: ops.hessian(lambda a, b: scalar(ops, inner(a, b)), 0)(x, y)


def level_jvp_x(ops: Backend, inner: Function) -> Function:
    def pushed(x: Any, y: Any) -> Any:
        return ops.jvp(lambda a: vector(ops, inner(a, y), a, y), (x,), (ops.constant(TANGENT_X),))

    return pushed


def level_jvp_y(ops: Backend, inner: Function) -> Function:
    def pushed(x: Any, y: Any) -> Any:
        tangents = (ops.constant(np.zeros_like(X)), ops.constant(TANGENT_Y))
        return ops.jvp(lambda a, b: vector(ops, inner(a, b), a, b), (x, y), tangents)

    return pushed


def level_vjp(ops: Backend, inner: Function) -> Function:
    def pulled(x: Any, y: Any) -> dict[str, Any]:
        out, pullback = ops.vjp(lambda a, b: vector(ops, inner(a, b), a, b), x, y)
        return {"out": out, "cotangents": pullback(ops.constant(COTANGENT))}

    return pulled


def level_hvp(ops: Backend, inner: Function) -> Function:
    def product(x: Any, y: Any) -> Any:
        tangents = (ops.constant(TANGENT_X), ops.constant(TANGENT_Y))
        return ops.hvp(lambda a, b: scalar(ops, inner(a, b)), (x, y), tangents)

    return product


def level_checkpoint(ops: Backend, inner: Function) -> Function:
    return lambda x, y: ops.checkpoint(lambda a, b: vector(ops, inner(a, b), a, b), x, y)


def level_closure_over_y(ops: Backend, inner: Function) -> Function:
    return lambda x, y: x * ops.grad(lambda a: scalar(ops, inner(a, y)))(x)


def level_closure_over_x(ops: Backend, inner: Function) -> Function:
    return lambda x, y: y * ops.grad(lambda b: scalar(ops, inner(x, b)))(0.5 * y)


LEVELS: dict[str, Callable[[Backend, Function], Function]] = {
    "grad0": level_grad_x,
    "grad1": level_grad_y,
    "grad01": level_grad_xy,
    "value_and_grad1": level_value_and_grad_y,
    "jacobian0": level_jacobian_x,
    "jacobian01_dict": level_jacobian_xy_of_dict,
    "hessian0": level_hessian_x,
    "jvp_x": level_jvp_x,
    "jvp_y": level_jvp_y,
    "vjp": level_vjp,
    "hvp": level_hvp,
    "checkpoint": level_checkpoint,
    "closure_y": level_closure_over_y,
    "closure_x": level_closure_over_x,
}
NAMES = list(LEVELS)


def compose(ops: Backend, chain: tuple[str, ...]) -> Function:
    """The chain's levels (outermost first) applied to the base function."""
    function: Function = lambda x, y: base(ops, x, y)
    for name in reversed(chain):
        function = LEVELS[name](ops, function)
    return function


def latin_triples(names: list[str], shifts: tuple[int, int]) -> Iterator[tuple[str, str, str]]:
    """(names[i], names[i + a], names[i + b]) for every i: each name once at each depth position."""
    count = len(names)
    for i in range(count):
        yield names[i], names[(i + shifts[0]) % count], names[(i + shifts[1]) % count]


SINGLES = [(name,) for name in NAMES]
PAIRS = [(outer, inner) for outer in NAMES for inner in NAMES]
TRIPLES = [*latin_triples(NAMES, (1, 3)), *latin_triples(NAMES, (5, 12))]


def chain_cases(chains: list[tuple[str, ...]]) -> list[Any]:
    """One pytest case per chain, named outermost first ("grad0-of-jvp_x")."""
    return [pytest.param(chain, id="-of-".join(chain)) for chain in chains]


CHAINS = chain_cases(SINGLES + PAIRS + TRIPLES)


def assert_trees_close(got: Any, expected: Any, rtol: float, atol: float) -> None:
    assert tree_structure(got) == tree_structure(expected)
    for k, (ours, theirs) in enumerate(zip(tree_leaves(got), tree_leaves(expected), strict=True)):
        assert shape_of(_plain(ours)) == shape_of(_plain(theirs)), f"leaf {k}"
        np.testing.assert_allclose(_plain(ours), _plain(theirs), rtol=rtol, atol=atol, err_msg=f"leaf {k}")


# -- the checks --------------------------------------------------------------------------------------------
def test_the_matrix_covers_every_level_at_every_depth():
    assert len(PAIRS) == len(NAMES) ** 2
    for position in range(3):
        assert {triple[position] for triple in TRIPLES} == set(NAMES)


@pytest.mark.parametrize("chain", CHAINS)
def test_the_outermost_level_is_the_derivative_of_the_chain_below_it(chain):
    below = compose(TAPE, chain[1:])
    expected = LEVELS[chain[0]](FINITE, below)(X, Y)
    got = compose(TAPE, chain)(X, Y)
    assert not any(isinstance(leaf, tape.Tensor) for leaf in tree_leaves(got))
    assert_trees_close(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("chain", CHAINS)
def test_the_chain_matches_torch_func(chain):
    torch = pytest.importorskip("torch")
    expected = compose(torch_backend(torch), chain)(torch.tensor(X), torch.tensor(Y))
    expected = tree_like(expected, [leaf.detach().numpy() for leaf in tree_leaves(expected)])
    got = compose(TAPE, chain)(X, Y)
    assert_trees_close(got, expected, rtol=1e-9, atol=1e-12)
