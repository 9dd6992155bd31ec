"""A picture of the recorded graph: ``tape.graph(loss)`` lists, draws or renders the records behind tensors.

``graph`` walks the records that made the given tensors, iteratively (a chain of 10^5 records is fine),
and keeps a snapshot: op names, shapes and dtypes, never the arrays, so a ``Graph`` holds no memory of the
computation alive. It renders as a text listing (``repr``), Graphviz DOT (``to_dot``), SVG in Jupyter
(``_repr_svg_``, with the optional ``graphviz`` package and the ``dot`` program) and a matplotlib drawing
(``draw``). With ``gradients=True`` it also hooks the records, so that the next backward writes the norm of
each cotangent into the graph. This module reads records and registers hooks; it never changes a record,
and it runs no sweep.
"""

from __future__ import annotations

import dataclasses
import importlib
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import hooks
from .record import Record
from .tensor import Tensor, plain

__all__ = ["SVG_NODE_LIMIT", "Edge", "Graph", "Node", "graph", "norm_of"]

#: ``_repr_svg_`` gives way to the text listing past this many nodes: ``dot`` takes minutes on huge graphs.
SVG_NODE_LIMIT = 2000

# Horizontal distance between neighbours of a layer in ``draw``, in units of the distance between layers.
_COLUMN_WIDTH = 1.4
_RELEASED_NOTE = (
    "{count} record(s) released by a backward without retain_graph: their inputs are lost, so the graph "
    "stops there (take the graph before backward, or call backward(retain_graph=True))"
)


@dataclass(frozen=True)
class Node:
    """One node of a ``Graph``: a record (an op call) or a leaf tensor that requires grad.

    Attributes
    ----------
    id : the node's identifier in the DOT text: ``r0, r1, ...`` for records in tape order, ``l0, ...`` for
        leaves in order of first use.
    name : how the listing refers to it: the name given in ``names``, else ``%0, %1, ...`` for records and
        ``leaf0, ...`` for leaves.
    op : the op's name, or None for a leaf.
    shapes, dtypes : one per output (several for an op such as ``np.linalg.eigh``); empty when a released
        record's outputs are unknown.
    outputs : how the listing refers to each output: ``name`` for a single one, else ``name[i]`` or the
        name given to that output.
    arguments : ``(argnum, reference)`` for each tensor argument of a record, in argument order;
        ``reference`` is None for an argument that does not require grad.
    released : whether a backward released the record (its inputs are then unknown).
    multi_output : whether the op returns a tuple of outputs (its tensors are numbered, even when the tuple
        has one element).
    """

    id: str
    name: str
    op: str | None
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[str, ...]
    outputs: tuple[str, ...]
    arguments: tuple[tuple[int, str | None], ...] = ()
    released: bool = False
    multi_output: bool = False

    @property
    def is_leaf(self) -> bool:
        """True for a leaf tensor, False for a record."""
        return self.op is None


@dataclass(frozen=True)
class Edge:
    """An input flowing into the record that used it: output ``index`` of ``source`` (None for a node with
    one output) is argument ``argnum`` of ``target``; ``several_inputs`` when the target has more than one
    tensor argument, so that the drawing says which one this is."""

    source: str
    target: str
    argnum: int
    index: int | None
    several_inputs: bool

    @property
    def label(self) -> str:
        """Which output feeds which argument, where either is ambiguous: ``"[1] -> arg 0"``, ``"arg 1"``,
        ``"[1]"``, or ``""``."""
        parts = [] if self.index is None else [f"[{self.index}]"]
        if self.several_inputs:
            parts.append(f"arg {self.argnum}")
        return " -> ".join(parts)


class Graph:
    """The records behind some tensors, as ``tape.graph`` found them. See ``graph`` for an example.

    Attributes
    ----------
    nodes : the leaves in order of first use, then the records in tape order.
    edges : one per input of each record that requires grad.
    outputs : how the listing refers to each tensor given to ``graph`` (``"const"`` for one that does not
        require grad).
    released : how many records a backward had released when the graph was taken.
    """

    def __init__(
        self, nodes: list[Node], edges: list[Edge], outputs: list[str], output_ids: set[str]
    ) -> None:
        self.nodes = nodes
        self.edges = edges
        self.outputs = outputs
        self.released = sum(node.released for node in nodes)
        self._output_ids = output_ids
        self._norms: dict[str, float] = {}  # output reference -> norm of its latest cotangent
        self._handles: list[hooks.RemovableHandle] = []

    @property
    def gradient_norms(self) -> dict[str, float]:
        """``{reference: norm}`` of the cotangent that reached each output of each node in the latest
        backward (with ``gradients=True``; empty before any backward)."""
        return dict(self._norms)

    def remove_hooks(self) -> None:
        """Unregister the hooks of ``gradients=True`` (needed before ``tape.jacobian`` or ``tape.hessian``
        on the same graph, which refuse hooks). The norms already seen stay."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __repr__(self) -> str:
        header = f"Graph of {self.count('op')} op(s) and {self.count('leaf')} leaf tensor(s); outputs: "
        lines = [header + (", ".join(self.outputs) or "none")]
        if self.released:
            lines.append("note: " + _RELEASED_NOTE.format(count=self.released))
        rows = []
        for node in self.nodes:
            if node.is_leaf:
                left = f"{node.name} = leaf"
            else:
                arguments = (
                    "<released>" if node.released else ", ".join(ref or "const" for _, ref in node.arguments)
                )
                named = node.multi_output and any(not out.startswith(node.name + "[") for out in node.outputs)
                left = f"{', '.join(node.outputs) if named else node.name} = {node.op}({arguments})"
            rows.append((left, _types(node), self._norm_text(node)))
        width = max((len(left) for left, _, _ in rows), default=0)
        types_width = max((len(types) for _, types, _ in rows), default=0)
        for left, types, norms in rows:
            line = f"  {left.ljust(width)}  {types.ljust(types_width) if norms else types}"
            lines.append(f"{line}  {norms}" if norms else line)
        return "\n".join(lines)

    def count(self, kind: str) -> int:
        """The number of nodes of a kind: ``"op"`` (records) or ``"leaf"``."""
        if kind not in ("op", "leaf"):
            raise ValueError(f"Graph.count: expected 'op' or 'leaf', got {kind!r}")
        return sum(node.is_leaf == (kind == "leaf") for node in self.nodes)

    def to_dot(self) -> str:
        """The graph as Graphviz DOT text, inputs at the top: render it with ``dot -Tsvg``.

        Examples
        --------
        >>> import numpy as np, tape
        >>> x = tape.tensor([1.0, 2.0], requires_grad=True)
        >>> print(tape.graph(np.sum(x * x), names={"x": x}).to_dot().splitlines()[4])
          l0 [label="x\\n(2,) float64", shape=ellipse, style=filled, fillcolor="#dbeafe"];
        """
        graph_attributes = 'rankdir=TB, fontname="Helvetica"'
        if self.released:
            note = _escape(_RELEASED_NOTE.format(count=self.released))
            graph_attributes += f', labelloc=b, fontsize=10, label="{note}"'
        lines = [
            "digraph tape {",
            f"  graph [{graph_attributes}];",
            '  node [fontname="Helvetica", fontsize=10];',
            '  edge [fontname="Helvetica", fontsize=9];',
        ]
        for node in self.nodes:
            label = "\\n".join(_escape(line) for line in self._label_lines(node))
            if node.is_leaf:
                style = 'shape=ellipse, style=filled, fillcolor="#dbeafe"'
            elif node.released:
                style = 'shape=box, style="rounded,dashed", color=gray50, fontcolor=gray30'
            else:
                style = 'shape=box, style="rounded,filled", fillcolor="#f3f4f6"'
            if node.id in self._output_ids:
                style += ", peripheries=2"
            lines.append(f'  {node.id} [label="{label}", {style}];')
        for edge in self.edges:
            label = f' [label="{_escape(edge.label)}"]' if edge.label else ""
            lines.append(f"  {edge.source} -> {edge.target}{label};")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def _repr_svg_(self) -> str | None:
        """SVG for Jupyter, through the ``graphviz`` package (``pip install 'tape[graph]'``) and the ``dot``
        program; None (Jupyter then shows the listing) when either is missing or the graph has more than
        ``SVG_NODE_LIMIT`` nodes."""
        if len(self.nodes) > SVG_NODE_LIMIT or shutil.which("dot") is None:
            return None
        try:
            graphviz = importlib.import_module("graphviz")
        except ImportError:
            return None
        try:
            svg: str = graphviz.Source(self.to_dot()).pipe(format="svg", encoding="utf-8")
        except (graphviz.ExecutableNotFound, graphviz.CalledProcessError):
            return None
        return svg

    def draw(self, ax: Any = None) -> Any:
        """Draw the graph with matplotlib on ``ax`` (a new figure when None) and return the axes.

        Nodes are placed in layers: leaves at the top, each record one layer below the lowest of its inputs,
        so the tape order runs down the picture; within a layer, nodes sit under the mean position of
        their inputs. Needs matplotlib (``pip install 'tape[bench]'`` or ``'tape[notebooks]'``).
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as error:
            raise ImportError(
                "Graph.draw needs matplotlib, which tape does not install by default: "
                "pip install 'tape[bench]' (or 'tape[notebooks]'); Graph.to_dot() needs nothing"
            ) from error
        places = self._layout()
        if ax is None:
            columns = max((x for x, _ in places.values()), default=0.0) * 2 + 1
            rows = max((-y for _, y in places.values()), default=0.0) + 1
            _, ax = plt.subplots(
                figsize=(min(max(4.0, 2.2 * columns), 40.0), min(max(3.0, 1.3 * rows), 40.0))
            )
        for edge in self.edges:
            start, end = places[edge.source], places[edge.target]
            ax.annotate(
                "",
                xy=end,
                xytext=start,
                arrowprops={"arrowstyle": "->", "color": "0.45", "shrinkA": 16, "shrinkB": 16},
            )
            if edge.label:
                middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
                ax.text(*middle, edge.label, fontsize=7, color="0.35", ha="center", va="center")
        for node in self.nodes:
            box: dict[str, Any]
            if node.is_leaf:
                box = {"boxstyle": "round,pad=0.4", "facecolor": "#dbeafe", "edgecolor": "#60a5fa"}
            elif node.released:
                box = {
                    "boxstyle": "round,pad=0.4",
                    "facecolor": "white",
                    "edgecolor": "0.5",
                    "linestyle": "--",
                }
            else:
                box = {"boxstyle": "round,pad=0.4", "facecolor": "#f3f4f6", "edgecolor": "0.4"}
            if node.id in self._output_ids:
                box["linewidth"] = 2.0
            text = "\n".join(self._label_lines(node))
            ax.text(*places[node.id], text, ha="center", va="center", fontsize=8, bbox=box)
        if self.released:
            ax.set_title(_RELEASED_NOTE.format(count=self.released), fontsize=8, wrap=True)
        xs = [x for x, _ in places.values()] or [0.0]
        ys = [y for _, y in places.values()] or [0.0]
        ax.set_xlim(min(xs) - 1, max(xs) + 1)
        ax.set_ylim(min(ys) - 0.7, max(ys) + 0.7)
        ax.axis("off")
        return ax

    def _layout(self) -> dict[str, tuple[float, float]]:
        """``{node id: (x, y)}``: layer ``-y`` from the inputs down, a barycentric pass across each layer."""
        parents: dict[str, list[str]] = {node.id: [] for node in self.nodes}
        for edge in self.edges:
            parents[edge.target].append(edge.source)
        depth: dict[str, int] = {}
        for node in self.nodes:  # leaves first, then tape order: every input is placed before its user
            depth[node.id] = 1 + max((depth[parent] for parent in parents[node.id]), default=-1)
        layers: dict[int, list[str]] = {}
        for node in self.nodes:
            layers.setdefault(depth[node.id], []).append(node.id)
        places: dict[str, tuple[float, float]] = {}
        for level in sorted(layers):
            members = layers[level]
            wanted = {
                member: np.mean([places[parent][0] for parent in parents[member]]) if parents[member] else 0.0
                for member in members
            }
            members.sort(key=lambda member: wanted[member])  # stable: ties keep the tape order
            for column, member in enumerate(members):
                places[member] = ((column - (len(members) - 1) / 2) * _COLUMN_WIDTH, -float(level))
        return places

    def _label_lines(self, node: Node) -> list[str]:
        title = node.name if node.is_leaf else f"{node.name} {node.op}"
        lines = [title + (" (released)" if node.released else "")]
        norms = self._norms
        if not node.multi_output and node.shapes:
            lines.append(_shape_text(node.shapes[0], node.dtypes[0]))
            if node.outputs[0] in norms:
                lines.append(f"|g| = {norms[node.outputs[0]]:.4g}")
        else:
            for index, (shape, dtype) in enumerate(zip(node.shapes, node.dtypes, strict=True)):
                norm = norms.get(node.outputs[index])
                lines.append(
                    f"[{index}] {_shape_text(shape, dtype)}" + ("" if norm is None else f"  |g| = {norm:.4g}")
                )
        return lines

    def _norm_text(self, node: Node) -> str:
        found = [self._norms.get(out) for out in node.outputs]
        if all(norm is None for norm in found):
            return ""
        return "|g| = " + ", ".join("-" if norm is None else f"{norm:.6g}" for norm in found)


def graph(*outputs: Tensor, names: Mapping[str, Tensor] | None = None, gradients: bool = False) -> Graph:
    """The graph of records that lead to ``outputs``: list it, draw it, render it.

    Parameters
    ----------
    *outputs : tensors whose history to show (a loss, or several results of one computation).
    names : ``{name: tensor}`` to label tensors: leaves (``dict(model.named_parameters())`` names a
        model's parameters) and recorded tensors alike. Tensors that are not in the graph are ignored.
    gradients : register hooks so that the next backward through these records writes the norm of the
        cotangent that reached each node into the graph (the listing, the DOT labels, ``gradient_norms``).
        Each later backward updates the norms; ``Graph.remove_hooks()`` stops it.

    Returns
    -------
    Graph
        ``repr`` is a listing, one line per node in tape order; ``to_dot()``, ``draw()``, and SVG in Jupyter.

    Notes
    -----
    A backward without ``retain_graph=True`` releases the records it went through, and with them their
    links to their inputs: take the graph before backward (as ``gradients=True`` needs anyway), or run
    backward with ``retain_graph=True``. A graph taken after a release shows what is left, marks the
    released records, and counts them in ``Graph.released``. Arguments that do not require grad are listed
    as ``const`` and have no node.

    Examples
    --------
    >>> import numpy as np, tape
    >>> W = tape.tensor([[1.0, -2.0], [3.0, 0.5]], requires_grad=True)
    >>> x = tape.tensor([1.0, 1.0])
    >>> loss = np.sum(np.maximum(x @ W, 0.0))
    >>> g = tape.graph(loss, names={"W": W}, gradients=True)
    >>> loss.backward()
    >>> g
    Graph of 3 op(s) and 1 leaf tensor(s); outputs: %2
      W = leaf               (2, 2) float64  |g| = 1.41421
      %0 = matmul(const, W)  (2,) float64    |g| = 1
      %1 = maximum(%0)       (2,) float64    |g| = 1.41421
      %2 = sum(%1)           () float64      |g| = 1
    """
    for position, output in enumerate(outputs):
        if not isinstance(output, Tensor):
            raise TypeError(f"graph: expected tensors, got {type(output).__name__} as output {position}")
    leaf_names, output_names = _names_by_tensor(names or {})
    records = _records_behind(outputs)
    released = {record for record in records if record.released}
    ids = {record: f"r{number}" for number, record in enumerate(records)}
    given_outputs = _given_outputs(outputs)

    # Leaves in order of first use: by the records in tape order, then those given as outputs.
    leaves: dict[int, Tensor] = {}
    inputs_of = {record: record.inputs for record in records}  # read once: another backward may release it
    for record in records:
        for _, node, _, _, _ in sorted(inputs_of[record], key=lambda entry: entry[0]):
            if node is not None and type(node) is not Record:
                leaves.setdefault(id(node), node)
    for output in outputs:
        if output._record is None and output.requires_grad:
            leaves.setdefault(id(output), output)

    nodes: list[Node] = []
    leaf_ids: dict[int, str] = {}
    for number, leaf in enumerate(leaves.values()):
        name = leaf_names.get(id(leaf), f"leaf{number}")
        leaf_ids[id(leaf)] = f"l{number}"
        nodes.append(Node(f"l{number}", name, None, (leaf.shape,), (leaf.dtype.name,), (name,)))
    record_nodes: dict[Record, Node] = {}
    for number, record in enumerate(records):
        shapes, dtypes, several = _outputs_of(record, given_outputs.get(record))
        if several:
            name = f"%{number}"
            outs = tuple(
                output_names.get((record, index), f"{name}[{index}]") for index in range(len(shapes))
            )
        else:
            name = output_names.get((record, None), f"%{number}")
            outs = (name,)
        record_nodes[record] = Node(
            ids[record], name, record.op.name, shapes, dtypes, outs, (), record in released, several
        )

    def reference(node: Any, index: int | None) -> str:
        if type(node) is not Record:
            return nodes[int(leaf_ids[id(node)][1:])].name
        made = record_nodes[node]
        if index is None:
            return made.name
        return made.outputs[index] if index < len(made.outputs) else f"{made.name}[{index}]"

    edges: list[Edge] = []
    for record in records:
        entries = sorted(inputs_of[record], key=lambda entry: entry[0])
        arguments: list[tuple[int, str | None]] = []
        for argnum, node, index, _, _ in entries:
            if node is None:
                arguments.append((argnum, None))
                continue
            arguments.append((argnum, reference(node, index)))
            source = ids[node] if type(node) is Record else leaf_ids[id(node)]
            edges.append(Edge(source, ids[record], argnum, index, len(entries) > 1))
        made = record_nodes[record]
        record_nodes[record] = dataclasses.replace(made, arguments=tuple(arguments))
    nodes.extend(record_nodes[record] for record in records)

    references = []
    output_ids = set()
    for output in outputs:
        if not output.requires_grad:
            references.append("const")
        elif output._record is None:
            references.append(reference(output, None))
            output_ids.add(leaf_ids[id(output)])
        else:
            references.append(reference(output._record, output._index))
            output_ids.add(ids[output._record])
    result = Graph(nodes, edges, references, output_ids)
    if gradients:
        _hook_norms(result, outputs, records, record_nodes, leaves.values(), released, reference)
    return result


def _names_by_tensor(
    names: Mapping[str, Tensor],
) -> tuple[dict[int, str], dict[tuple[Record, int | None], str]]:
    """``({id(leaf): name}, {(record, index): name})`` from ``{name: tensor}``."""
    leaf_names: dict[int, str] = {}
    output_names: dict[tuple[Record, int | None], str] = {}
    for name, tensor in names.items():
        if not isinstance(tensor, Tensor):
            raise TypeError(f"graph: names maps names to tensors, got {type(tensor).__name__} for {name!r}")
        if tensor._record is None:
            leaf_names[id(tensor)] = str(name)
        else:
            output_names[(tensor._record, tensor._index)] = str(name)
    return leaf_names, output_names


def _records_behind(outputs: Iterable[Tensor]) -> list[Record]:
    """Every record the outputs depend on, in tape order, found with an explicit stack (no recursion)."""
    stack = [output._record for output in outputs if output._record is not None]
    seen: set[Record] = set()
    while stack:
        record = stack.pop()
        if record in seen:
            continue
        seen.add(record)
        for _, node, _, _, _ in record.inputs:
            if type(node) is Record and node not in seen:
                stack.append(node)
    return sorted(seen, key=lambda record: record.position)


def _given_outputs(outputs: Iterable[Tensor]) -> dict[Record, dict[int | None, Tensor]]:
    """The given tensors by the record and index that made them: they still know a released record's shape."""
    found: dict[Record, dict[int | None, Tensor]] = {}
    for output in outputs:
        if output._record is not None:
            found.setdefault(output._record, {})[output._index] = output
    return found


def _outputs_of(
    record: Record, given: dict[int | None, Tensor] | None
) -> tuple[tuple[tuple[int, ...], ...], tuple[str, ...], bool]:
    """``(shapes, dtypes, several)`` of a record's outputs; ``several`` when the op returns a tuple."""
    out = record.out
    if out is None:  # released: only a tensor given to graph() still tells its shape
        if given and None in given:
            return (given[None].shape,), (given[None].dtype.name,), False
        return (), (), bool(given)
    values = out if type(out) is tuple else (out,)
    shapes = tuple(np.shape(value) for value in values)
    return shapes, tuple(np.asarray(value).dtype.name for value in values), type(out) is tuple


def _types(node: Node) -> str:
    if not node.shapes:
        return "?"
    return ", ".join(_shape_text(shape, dtype) for shape, dtype in zip(node.shapes, node.dtypes, strict=True))


def _shape_text(shape: tuple[int, ...], dtype: str) -> str:
    return f"{shape} {dtype}"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def norm_of(cotangent: Any) -> float:
    """The 2-norm of a cotangent over all its elements (a tensor's under ``create_graph``, unrecorded)."""
    return float(np.linalg.norm(np.ravel(plain(cotangent))))


def _hook_norms(
    result: Graph,
    outputs: tuple[Tensor, ...],
    records: list[Record],
    record_nodes: dict[Record, Node],
    leaves: Iterable[Tensor],
    released: set[Record],
    reference: Any,
) -> None:
    norms = result._norms

    def writer(key: str) -> hooks.Hook:
        def write(cotangent: Any) -> None:
            if cotangent is not None:
                norms[key] = norm_of(cotangent)

        return write

    covered = set()
    for output in outputs:  # the tensors given: through their own register_hook
        if output.requires_grad and output._record is not None:
            result._handles.append(output.register_hook(writer(reference(output._record, output._index))))
            covered.add((output._record, output._index))
    for record in records:
        if record in released:
            continue
        node = record_nodes[record]
        indices: Iterable[int | None] = range(len(node.shapes)) if node.multi_output else [None]
        for index in indices:
            if (record, index) not in covered:
                result._handles.append(
                    hooks.register_on_record(record, index, writer(reference(record, index)))
                )
    for leaf in leaves:
        result._handles.append(leaf.register_hook(writer(reference(leaf, None))))
