"""``Parameter``, ``Module`` and the containers (``Sequential``, ``ModuleList``, ``ModuleDict``), and saving a
module (and optimizer) to one ``.npz`` file.

A checkpoint is never lost or half-loaded: ``save`` writes a temporary file beside the target and renames it
over the target only once it is complete and on disk; ``load`` and ``load_state_dict`` check every entry
(each ``.npy`` header before its data) and write nothing unless all of it fits.

A ``Module`` registers the ``Parameter``s and sub-modules assigned to its attributes, as torch's does, so
``parameters()``, ``state_dict()`` and ``train()``/``eval()`` reach the whole tree. Buffers (running
statistics) are plain numpy arrays registered with ``register_buffer``. This file holds no layer.

Hooks follow torch's: forward pre-hooks and forward hooks run around ``forward``; full backward hooks see
the gradients with respect to a call's inputs and outputs, caught by two identity ops (``_input_gate``,
``_output_gate``) that the call's tensors pass through, so the ordinary reverse sweep runs them.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from ..anomaly import bump
from ..grad_mode import no_grad, state
from ..hooks import RemovableHandle
from ..op import Op
from ..tensor import Tensor

ForwardPreHook = Callable[["Module", tuple[Any, ...]], Any]
ForwardHook = Callable[["Module", tuple[Any, ...], Any], Any]
BackwardHook = Callable[["Module", tuple[Any, ...], tuple[Any, ...]], Any]


class Parameter(Tensor):
    """A tensor that requires grad and that a ``Module`` registers when assigned to one of its attributes.

    Examples
    --------
    >>> import numpy as np
    >>> p = Parameter(np.zeros(3))
    >>> p.requires_grad, isinstance(p, Tensor)
    (True, True)
    """

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        array = data._data if isinstance(data, Tensor) else np.asarray(data)
        if array.dtype.kind != "f":
            raise TypeError(f"Parameter: expected floating-point data, got dtype {array.dtype.name}")
        super().__init__(array, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of layers and models: subclasses set parameters and sub-modules in ``__init__`` and
    compute in ``forward``; calling the module calls ``forward``.

    Examples
    --------
    >>> import numpy as np
    >>> class Scale(Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.factor = Parameter(np.ones(1))
    ...     def forward(self, x):
    ...         return x * self.factor
    >>> [name for name, _ in Scale().named_parameters()]
    ['factor']
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_backward_hooks", OrderedDict())

    # -- registration ------------------------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() before assigning attributes ({name!r})"
            )
        if name in self._buffers and (value is None or isinstance(value, np.ndarray)):
            self._buffers[name] = value
            return
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self.__dict__.pop(name, None)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self.__dict__.pop(name, None)
            self._modules[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # Only called when ordinary lookup fails: parameters, buffers and sub-modules live in their dicts.
        state = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in state and name in state[registry]:
                return state[registry][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, parameter: Parameter | None) -> None:
        """Register ``parameter`` under ``name`` (``None`` marks an absent one, as a bias-free layer's)."""
        if parameter is not None and not isinstance(parameter, Parameter):
            raise TypeError(f"register_parameter: expected a Parameter, got {type(parameter).__name__}")
        self.__dict__.pop(name, None)
        self._parameters[name] = parameter

    def register_buffer(self, name: str, array: np.ndarray | None) -> None:
        """Register a plain array saved in ``state_dict`` but not trained (running statistics)."""
        self.__dict__.pop(name, None)
        self._buffers[name] = None if array is None else np.asarray(array)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` as a child under ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: expected a Module, got {type(module).__name__}")
        self.__dict__.pop(name, None)
        self._modules[name] = module

    # -- traversal ---------------------------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every module below it, with dotted names, each once."""
        seen: set[int] = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [
                (f"{name}.{child_name}" if name else child_name, child)
                for child_name, child in module._modules.items()
                if child is not None
            ]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        """This module and every module below it."""
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """The direct sub-modules with their names."""
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def children(self) -> Iterator[Module]:
        """The direct sub-modules."""
        for _, module in self.named_children():
            yield module

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Every parameter of the tree with its dotted name; a parameter shared by two modules comes once."""
        seen: set[int] = set()
        for module_name, module in self.named_modules(prefix):
            for name, parameter in module._parameters.items():
                if parameter is None or id(parameter) in seen:
                    continue
                seen.add(id(parameter))
                yield (f"{module_name}.{name}" if module_name else name), parameter

    def parameters(self) -> Iterator[Parameter]:
        """Every parameter of the tree (what an optimizer is given)."""
        for _, parameter in self.named_parameters():
            yield parameter

    def named_buffers(self) -> Iterator[tuple[str, np.ndarray]]:
        """Every buffer of the tree with its dotted name."""
        for module_name, module in self.named_modules():
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    yield (f"{module_name}.{name}" if module_name else name), buffer

    # -- modes and gradients -----------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (dropout active, batch statistics) on the whole tree; return self."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Set evaluation mode on the whole tree; return self."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (sets ``.grad`` to None, as torch's default)."""
        for parameter in self.parameters():
            parameter.grad = None

    def to(self, dtype: Any) -> Module:
        """Convert every parameter and floating buffer of the tree to the floating ``dtype``; return self.

        The ``Parameter`` objects stay the same (an optimizer built on them keeps working); their values and
        gradients are cast. A record that used a parameter before the conversion refuses to run backward.

        Examples
        --------
        >>> import numpy as np
        >>> from tape.nn import Linear
        >>> Linear(2, 3).to(np.float32).weight.dtype
        dtype('float32')
        """
        target = np.dtype(dtype)
        if target.kind != "f":
            raise TypeError(f"{type(self).__name__}.to: expected a floating dtype, got {target.name}")
        with no_grad():
            for parameter in self.parameters():
                if parameter.dtype != target:
                    parameter._data = parameter._data.astype(target)
                    bump(parameter._vc)  # the old values are gone from this tensor: records refuse
                    if parameter.grad is not None:
                        parameter.grad = np.asarray(parameter.grad).astype(target)
        for module in self.modules():
            for name, buffer in module._buffers.items():
                if buffer is not None and buffer.dtype.kind == "f":
                    module._buffers[name] = buffer.astype(target, copy=False)
        return self

    def float(self) -> Module:
        """``to(np.float32)``, as torch's ``Module.float()``."""
        return self.to(np.float32)

    def double(self) -> Module:
        """``to(np.float64)``, as torch's ``Module.double()``."""
        return self.to(np.float64)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze every parameter; return self."""
        for parameter in self.parameters():
            parameter.requires_grad_(requires_grad)
        return self

    # -- state -------------------------------------------------------------------------------------------
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Copies of every parameter's and buffer's values, keyed by dotted name.

        Examples
        --------
        >>> from tape.nn import Linear
        >>> list(Linear(2, 3).state_dict())
        ['weight', 'bias']
        """
        state: OrderedDict[str, np.ndarray] = OrderedDict()
        for module_name, module in self.named_modules():
            dotted = f"{module_name}." if module_name else ""
            for name, parameter in module._parameters.items():
                if parameter is not None:
                    state[dotted + name] = parameter._data.copy()
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    state[dotted + name] = np.array(buffer, copy=True)
        return state

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> tuple[list[str], list[str]]:
        """Copy values into the parameters and buffers in place; return (missing keys, unexpected keys).

        Every value is checked before any is written, so a failed load leaves the module as it was. With
        ``strict`` (the default) missing or unexpected keys raise a ``KeyError`` listing them. A value of
        another shape, one whose dtype numpy would not cast under its ``same_kind`` rule (complex into real,
        float into int, strings, objects) or one that is not an array raises a ``ValueError`` naming each
        such key and what is wrong with it.

        Examples
        --------
        >>> import numpy as np
        >>> from tape.nn import Linear
        >>> layer = Linear(2, 1)
        >>> layer.load_state_dict({"weight": np.ones((1, 2)), "bias": np.zeros(1)})
        ([], [])
        >>> layer.load_state_dict({"weight": np.ones((1, 2), dtype=complex), "bias": np.zeros(1)})
        Traceback (most recent call last):
        ...
        ValueError: Linear.load_state_dict: weight: complex values (complex128) do not fit a real float64 ...
        >>> layer.weight.data
        array([[1., 1.]])
        """
        plan, missing, unexpected = self._check_state_dict(state_dict, strict)
        self._assign_state(plan)
        return missing, unexpected

    def _state_targets(self) -> dict[str, tuple[Module, str, bool]]:
        """Each state key with the module holding it, its name there and whether it is a parameter."""
        targets: dict[str, tuple[Module, str, bool]] = {}
        for module_name, module in self.named_modules():
            dotted = f"{module_name}." if module_name else ""
            for name, parameter in module._parameters.items():
                if parameter is not None:
                    targets[dotted + name] = (module, name, True)
            for name, buffer in module._buffers.items():
                if buffer is not None:
                    targets[dotted + name] = (module, name, False)
        return targets

    def _check_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool
    ) -> tuple[list[tuple[Module, str, bool, np.ndarray]], list[str], list[str]]:
        """What ``load_state_dict`` would write, as (module, name, is parameter, value), after checking all
        of it; raises without writing anything."""
        where = f"{type(self).__name__}.load_state_dict"
        targets = self._state_targets()
        missing = [key for key in targets if key not in state_dict]
        unexpected = [key for key in state_dict if key not in targets]
        if strict and (missing or unexpected):
            raise KeyError(f"{where}: missing keys {missing}, unexpected keys {unexpected}")
        plan, problems = [], []
        for key, (module, name, is_parameter) in targets.items():
            if key not in state_dict:
                continue
            current = module._parameters[name]._data if is_parameter else module._buffers[name]
            value = state_dict[key]
            try:
                value = value._data if isinstance(value, Tensor) else np.asarray(value)
            except (TypeError, ValueError) as error:
                problems.append(f"{key}: not an array ({error})")
                continue
            problem = value_problem(value.shape, value.dtype, current.shape, current.dtype)
            if problem is None and not current.flags.writeable:
                problem = "the array to load into is read-only"
            if problem is None:
                plan.append((module, name, is_parameter, value))
            else:
                problems.append(f"{key}: {problem}")
        if problems:
            raise ValueError(f"{where}: " + "; ".join(problems) + "; nothing was loaded")
        return plan, missing, unexpected

    @staticmethod
    def _assign_state(plan: list[tuple[Module, str, bool, np.ndarray]]) -> None:
        # Only checked values reach here: no write can fail halfway.
        with no_grad():
            for module, name, is_parameter, value in plan:
                if is_parameter:
                    module._parameters[name][...] = value  # in place: bumps the version counter
                else:
                    np.copyto(module._buffers[name], value, casting="same_kind")

    # -- hooks -------------------------------------------------------------------------------------------
    def register_forward_pre_hook(self, hook: ForwardPreHook) -> RemovableHandle:
        """Run ``hook(module, args)`` before each ``forward``; return a handle whose ``remove()`` undoes it.

        ``args`` is the tuple of positional arguments (keyword arguments reach ``forward`` unchanged). The
        hook returns None to keep them, or new ones: a tuple, or a single value standing for a 1-tuple.
        Hooks run in the order they were registered, each on what the previous one returned.

        Examples
        --------
        >>> import numpy as np
        >>> from tape.nn import Linear
        >>> layer = Linear(2, 1)
        >>> handle = layer.register_forward_pre_hook(lambda module, args: args[0] * 0)
        >>> bool(layer(np.ones((1, 2))).data == layer.bias.data)
        True
        >>> handle.remove()
        """
        return self._add_hook(self._forward_pre_hooks, hook, "register_forward_pre_hook")

    def register_forward_hook(self, hook: ForwardHook) -> RemovableHandle:
        """Run ``hook(module, args, output)`` after each ``forward``; return a handle whose ``remove()``
        undoes it.

        ``args`` are the positional arguments ``forward`` received (after the pre-hooks). The hook returns
        None to keep the output, or a replacement for it. Hooks run in the order they were registered.

        Examples
        --------
        >>> import numpy as np
        >>> from tape.nn import Identity
        >>> layer = Identity()
        >>> handle = layer.register_forward_hook(lambda module, args, output: output * 10)
        >>> layer(np.array([1.0, 2.0]))
        array([10., 20.])
        """
        return self._add_hook(self._forward_hooks, hook, "register_forward_hook")

    def register_full_backward_hook(self, hook: BackwardHook) -> RemovableHandle:
        """Run ``hook(module, grad_input, grad_output)`` in backward, once the gradients with respect to a
        call's inputs are known; return a handle whose ``remove()`` undoes it.

        ``grad_input`` has one entry per positional argument of the call: the gradient of a tensor that
        requires grad, None for anything else. ``grad_output`` has one per output (``forward`` returns a
        tensor or a tuple): the gradient, None for what is not a tensor that requires grad, zeros for an
        output that no gradient reached (torch: None). The hook returns None, or a tuple of the same length
        that replaces ``grad_input``: each entry None (no gradient flows to that input) or of the
        gradient's shape. Hooks run in registration order, each seeing what the previous one returned;
        those registered after a call do not run for it, those removed since do not run at all.

        The call's tensor inputs and outputs pass through identity ops (one for all inputs, one for all
        outputs), so the hooks run within the ordinary reverse sweep, and each such tensor is copied once
        per call while a backward hook is registered. When no input requires grad the hooks run once the
        output gradients are known, with ``grad_input`` all None, and may only return None. Keyword
        arguments are not gated: their gradients are not in ``grad_input``. ``forward`` must return a tensor
        or a tuple (anything else is refused when hooks are registered).

        Examples
        --------
        >>> import numpy as np, tape
        >>> from tape.nn import Linear
        >>> layer = Linear(2, 1)
        >>> seen = []
        >>> def hook(module, grad_input, grad_output):
        ...     seen.append(grad_output)
        >>> handle = layer.register_full_backward_hook(hook)
        >>> layer(tape.tensor(np.ones((1, 2)), requires_grad=True)).sum().backward()
        >>> seen
        [(array([[1.]]),)]
        """
        return self._add_hook(self._backward_hooks, hook, "register_full_backward_hook")

    def _add_hook(self, hooks: OrderedDict[int, Any], hook: Any, where: str) -> RemovableHandle:
        if not callable(hook):
            raise TypeError(f"{type(self).__name__}.{where}: expected a callable, got {type(hook).__name__}")
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        return handle

    # -- calling and printing ----------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"{type(self).__name__} must define forward(): a Module subclass computes its output there"
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if state.tracer is not None:  # tape.compile: a later call in another training mode records again
            state.tracer.called_module(self)
        if self._forward_pre_hooks or self._forward_hooks or self._backward_hooks:
            return self._call_with_hooks(args, kwargs)
        if self._parameters:
            self._check_input_dtypes(args)
        return self.forward(*args, **kwargs)

    def _call_with_hooks(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # torch's order: pre-hooks, inputs through the gate, forward, forward hooks, outputs through the gate.
        for hook in _live(self._forward_pre_hooks, tuple(self._forward_pre_hooks)):
            replacement = hook(self, args)
            if replacement is not None:
                args = replacement if isinstance(replacement, tuple) else (replacement,)
        if self._parameters:
            self._check_input_dtypes(args)
        call = None
        if self._backward_hooks and state.grad_enabled:
            call = _HookedCall(self)
            args = call.gate_inputs(args)
        output = self.forward(*args, **kwargs)
        for hook in _live(self._forward_hooks, tuple(self._forward_hooks)):
            replacement = hook(self, args, output)
            if replacement is not None:
                output = replacement
        if call is not None:
            output = call.gate_outputs(output)
        return output

    def _check_input_dtypes(self, args: tuple[Any, ...]) -> None:
        """A floating input of another dtype than this module's parameters is an error, as in torch: numpy
        would promote the result silently (float32 input, float64 layer: float64 out)."""
        dtype = next((p.dtype for p in self._parameters.values() if p is not None), None)
        if dtype is None:  # every parameter slot is None (affine=False, bias=False alone): nothing to match
            return
        for position, arg in enumerate(args):
            if isinstance(arg, Tensor | np.ndarray) and arg.dtype.kind == "f" and arg.dtype != dtype:
                raise TypeError(
                    f"{type(self).__name__}: input {position} is {arg.dtype.name} but the parameters are "
                    f"{dtype}; convert the input (x.astype(np.{dtype})) or the module (.to(np.{arg.dtype}))"
                )

    def extra_repr(self) -> str:
        """The text inside this module's parentheses in ``repr`` (its settings)."""
        return ""

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines.extend(extra.split("\n"))
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        if not self._modules:
            return f"{type(self).__name__}({extra})"
        body = "\n  ".join(lines)
        return f"{type(self).__name__}(\n  {body}\n)"

    def __dir__(self) -> list[str]:
        return sorted(
            set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules)
        )


def _live(hooks: OrderedDict[int, Any], keys: tuple[int, ...]) -> Iterator[Any]:
    """The hooks among ``keys`` still registered when their turn comes (a hook may remove another)."""
    for key in keys:
        hook = hooks.get(key)
        if hook is not None:
            yield hook


class _HookedCall:
    """One call of a module that has full backward hooks: what its input gate and output gate share.

    In the reverse sweep the output gate runs first and queues ``grad_output``; the input gate takes it and
    runs the hooks. A queue rather than one slot: a batched sweep (``jacobian``) runs each gate once per
    row, all rows of the output gate before those of the input gate.
    """

    __slots__ = (
        "argument_count",
        "grad_outputs",
        "input_positions",
        "keys",
        "module",
        "output_count",
        "output_positions",
    )

    def __init__(self, module: Module) -> None:
        self.module = module
        self.keys = tuple(module._backward_hooks)  # hooks registered after this call do not see it
        self.argument_count = 0
        self.input_positions: tuple[int, ...] = ()
        self.output_count = 0
        self.output_positions: tuple[int, ...] = ()
        self.grad_outputs: deque[tuple[Any, ...]] = deque()

    def gate_inputs(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        self.argument_count = len(args)
        self.input_positions = tuple(
            position for position, arg in enumerate(args) if isinstance(arg, Tensor) and arg.requires_grad
        )
        if not self.input_positions:
            return args
        gated = list(args)
        passed = _input_gate(self, *(args[position] for position in self.input_positions))
        for position, tensor in zip(self.input_positions, passed, strict=True):
            gated[position] = tensor
        return tuple(gated)

    def gate_outputs(self, output: Any) -> Any:
        single = isinstance(output, Tensor)
        outputs = (output,) if single else output
        if type(outputs) is not tuple:
            raise TypeError(
                f"{type(self.module).__name__}: full backward hooks need forward (after the forward hooks) "
                f"to return a Tensor or a tuple, got {type(output).__name__}; return a tuple, or remove "
                "the backward hooks"
            )
        self.output_count = len(outputs)
        self.output_positions = tuple(
            position
            for position, item in enumerate(outputs)
            if isinstance(item, Tensor) and item.requires_grad
        )
        if not self.output_positions:
            return output
        gated = list(outputs)
        passed = _output_gate(self, *(outputs[position] for position in self.output_positions))
        for position, tensor in zip(self.output_positions, passed, strict=True):
            gated[position] = tensor
        return gated[0] if single else tuple(gated)

    def receive_grad_outputs(self, cotangents: tuple[Any, ...]) -> None:
        grad_output = _spread(cotangents, self.output_positions, self.output_count)
        if self.input_positions:
            self.grad_outputs.append(grad_output)
            return
        # No input requires grad: no input gate will run, so the hooks run now, as torch's do.
        nothing = (None,) * self.argument_count
        for hook in _live(self.module._backward_hooks, self.keys):
            replacement = hook(self.module, nothing, grad_output)
            if replacement is not None and any(item is not None for item in replacement):
                raise ValueError(
                    f"{type(self.module).__name__}: a full backward hook returned gradients, but no input "
                    "of this call requires grad; return None"
                )

    def hooked_grad_inputs(self, cotangents: tuple[Any, ...]) -> list[Any]:
        grad_output = self.grad_outputs.popleft() if self.grad_outputs else (None,) * self.output_count
        grad_input = _spread(cotangents, self.input_positions, self.argument_count)
        for hook in _live(self.module._backward_hooks, self.keys):
            replacement = hook(self.module, grad_input, grad_output)
            if replacement is not None:
                grad_input = self._checked(replacement, grad_input)
        return [grad_input[position] for position in self.input_positions]

    def _checked(self, replacement: Any, grad_input: tuple[Any, ...]) -> tuple[Any, ...]:
        name = type(self.module).__name__
        if not isinstance(replacement, tuple | list):
            raise TypeError(
                f"{name}: a full backward hook returned {type(replacement).__name__}; expected None or a "
                f"tuple of {len(grad_input)} gradients (one per positional argument)"
            )
        if len(replacement) != len(grad_input):
            raise ValueError(
                f"{name}: a full backward hook returned {len(replacement)} gradients for "
                f"{len(grad_input)} positional arguments"
            )
        for position, (given, expected) in enumerate(zip(replacement, grad_input, strict=True)):
            if given is None:
                continue
            if expected is None:
                raise ValueError(
                    f"{name}: a full backward hook returned a gradient at position {position}, but that "
                    "argument is not a tensor that requires grad; return None there"
                )
            if np.shape(given) != np.shape(expected):
                raise ValueError(
                    f"{name}: a full backward hook returned grad_input[{position}] of shape "
                    f"{np.shape(given)}, but the gradient of input {position} has shape {np.shape(expected)}"
                )
        return tuple(replacement)


def _spread(values: tuple[Any, ...], positions: tuple[int, ...], count: int) -> tuple[Any, ...]:
    """``values`` placed at ``positions`` of a tuple of ``count`` entries, None elsewhere."""
    spread: list[Any] = [None] * count
    for position, value in zip(positions, values, strict=True):
        spread[position] = value
    return tuple(spread)


def _pass_through(call: _HookedCall, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    # Copies: the gated tensors get version counters of their own, so they must not share a buffer with
    # the tensors they stand for (a write to one would go unseen by the records that saved the other).
    return tuple(np.array(array, copy=True) for array in arrays)


def _input_gate_backward(g: tuple[Any, ...], out: Any, call: _HookedCall, *inputs: Any) -> list[Any]:
    return [None, *call.hooked_grad_inputs(g)]


def _output_gate_backward(g: tuple[Any, ...], out: Any, call: _HookedCall, *outputs: Any) -> list[Any]:
    call.receive_grad_outputs(g)
    return [None, *g]


_input_gate = Op(
    _pass_through, name="backward_hook_inputs", backward=_input_gate_backward, complex_rule="own"
)
_output_gate = Op(
    _pass_through, name="backward_hook_outputs", backward=_output_gate_backward, complex_rule="own"
)


class Sequential(Module):
    """Modules applied one after the other; ``Sequential(a, b)(x)`` is ``b(a(x))``.

    Examples
    --------
    >>> from tape.nn import Linear, ReLU
    >>> model = Sequential(Linear(2, 4), ReLU(), Linear(4, 1))
    >>> len(model), type(model[1]).__name__
    (3, 'ReLU')
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], Mapping):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(modules):
                self.add_module(str(index), module)

    def forward(self, x: Any) -> Any:
        for module in self._modules.values():
            x = module(x)
        return x

    def __getitem__(self, index: int | slice) -> Any:
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*modules[index])
        return modules[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> Sequential:
        """Add ``module`` at the end; return self."""
        self.add_module(str(len(self._modules)), module)
        return self


class ModuleList(Module):
    """A list of modules whose parameters are registered (for a variable number of layers).

    Examples
    --------
    >>> from tape.nn import Linear
    >>> layers = ModuleList([Linear(2, 2) for _ in range(3)])
    >>> len(list(layers.parameters()))
    6
    """

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        self.extend(modules)

    def append(self, module: Module) -> ModuleList:
        """Add ``module`` at the end; return self."""
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Add each of ``modules`` at the end; return self."""
        for module in modules:
            self.append(module)
        return self

    def __getitem__(self, index: int | slice) -> Any:
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(modules[index])
        return modules[index]

    def __setitem__(self, index: int, module: Module) -> None:
        key = list(self._modules)[index]
        self.add_module(key, module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())


class ModuleDict(Module):
    """A dict of modules whose parameters are registered, in insertion order.

    Examples
    --------
    >>> from tape.nn import Linear, Tanh
    >>> heads = ModuleDict({"encoder": Linear(2, 2), "activation": Tanh()})
    >>> list(heads.keys())
    ['encoder', 'activation']
    """

    def __init__(self, modules: Mapping[str, Module] | None = None) -> None:
        super().__init__()
        for name, module in (modules or {}).items():
            self.add_module(name, module)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def keys(self) -> Iterable[str]:
        return self._modules.keys()

    def values(self) -> Iterable[Module]:
        return self._modules.values()

    def items(self) -> Iterable[tuple[str, Module]]:
        return self._modules.items()


# -- checking values before they are loaded ------------------------------------------------------------
def value_problem(
    shape: tuple[int, ...], dtype: np.dtype, target_shape: tuple[int, ...], target_dtype: np.dtype
) -> str | None:
    """What keeps an array of ``shape`` and ``dtype`` from being loaded into the target, or None."""
    if dtype.hasobject:
        return "object arrays are refused (they would need pickle)"
    if tuple(shape) != tuple(target_shape):
        return f"expected shape {tuple(target_shape)}, got {tuple(shape)}"
    if not np.can_cast(dtype, target_dtype, casting="same_kind"):
        if dtype.kind == "c" and target_dtype.kind != "c":
            return f"complex values ({dtype}) do not fit a real {target_dtype} array"
        return f"dtype {dtype} does not cast to {target_dtype} under numpy's same_kind rule"
    return None
