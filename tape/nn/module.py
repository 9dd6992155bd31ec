"""``Parameter``, ``Module`` and the containers (``Sequential``, ``ModuleList``, ``ModuleDict``), and saving a
module (and optimizer) to one ``.npz`` file.

A checkpoint is never lost or half-loaded: ``save`` writes a temporary file beside the target and renames it
over the target only once it is complete and on disk; ``load`` and ``load_state_dict`` check every entry
(each ``.npy`` header before its data) and write nothing unless all of it fits.

A ``Module`` registers the ``Parameter``s and sub-modules assigned to its attributes, as torch's does, so
``parameters()``, ``state_dict()`` and ``train()``/``eval()`` reach the whole tree. Buffers (running
statistics) are plain numpy arrays registered with ``register_buffer``. This file holds no layer.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from ..anomaly import bump
from ..grad_mode import no_grad
from ..tensor import Tensor


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

    # -- calling and printing ----------------------------------------------------------------------------
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"{type(self).__name__} must define forward(): a Module subclass computes its output there"
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._parameters:
            self._check_input_dtypes(args)
        return self.forward(*args, **kwargs)

    def _check_input_dtypes(self, args: tuple[Any, ...]) -> None:
        """A floating input of another dtype than this module's parameters is an error, as in torch: numpy
        would promote the result silently (float32 input, float64 layer: float64 out)."""
        dtype = next((p.dtype for p in self._parameters.values() if p is not None), None)
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
