"""tape/graph.py: the listing, the DOT text, SVG and matplotlib renderings of the recorded graph, and the
cotangent norms of ``gradients=True``, against what the computation is known to be."""

from __future__ import annotations

import re
import shutil
import sys
import time

import numpy as np
import pytest

import tape

X = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])


def mlp():
    """``sum(maximum(x @ W1 + b1, 0))`` with a constant ``x``: four records and two leaves."""
    W1 = tape.tensor(np.linspace(-1.0, 1.0, 12).reshape(3, 4), requires_grad=True)
    b1 = tape.tensor([0.1, -0.2, 0.3, -0.4], requires_grad=True)
    x = tape.tensor(X)
    loss = np.sum(np.maximum(x @ W1 + b1, 0.0))
    return W1, b1, loss


def dot_edges(dot: str) -> set[tuple[str, str, str]]:
    """``{(source, target, label)}`` of the DOT text's edge statements."""
    found = re.findall(r'^\s*(\w+) -> (\w+)(?: \[label="([^"]*)"\])?;$', dot, flags=re.M)
    return set(found)


def dot_labels(dot: str) -> dict[str, str]:
    """``{node id: label}`` of the DOT text's node statements."""
    return dict(re.findall(r'^\s*(\w+) \[label="([^"]*)"', dot, flags=re.M))


def test_the_listing_of_a_small_mlp_names_each_op_shape_and_input():
    W1, b1, loss = mlp()
    graph = tape.graph(loss, names={"W1": W1, "b1": b1})
    assert repr(graph) == "\n".join(
        [
            "Graph of 4 op(s) and 2 leaf tensor(s); outputs: %3",
            "  W1 = leaf               (3, 4) float64",
            "  b1 = leaf               (4,) float64",
            "  %0 = matmul(const, W1)  (2, 4) float64",
            "  %1 = add(%0, b1)        (2, 4) float64",
            "  %2 = maximum(%1)        (2, 4) float64",
            "  %3 = sum(%2)            () float64",
        ]
    )
    assert str(graph) == repr(graph)
    assert graph.released == 0
    assert [node.op for node in graph.nodes] == [None, None, "matmul", "add", "maximum", "sum"]
    assert graph.count("op") == 4 and graph.count("leaf") == 2


def test_the_dot_text_of_a_small_mlp_has_exactly_its_nodes_and_edges():
    W1, b1, loss = mlp()
    dot = tape.graph(loss, names={"W1": W1, "b1": b1}).to_dot()
    assert dot.startswith("digraph tape {") and dot.rstrip().endswith("}")
    assert dot_labels(dot) == {
        "l0": r"W1\n(3, 4) float64",
        "l1": r"b1\n(4,) float64",
        "r0": r"%0 matmul\n(2, 4) float64",
        "r1": r"%1 add\n(2, 4) float64",
        "r2": r"%2 maximum\n(2, 4) float64",
        "r3": r"%3 sum\n() float64",
    }
    # matmul's and add's arguments are numbered (two tensor arguments each); maximum's and sum's are not.
    assert dot_edges(dot) == {
        ("l0", "r0", "arg 1"),
        ("r0", "r1", "arg 0"),
        ("l1", "r1", "arg 1"),
        ("r1", "r2", ""),
        ("r2", "r3", ""),
    }
    assert re.search(r"^\s*r3 \[.*peripheries=2\];$", dot, flags=re.M), "the output is marked"


def test_unnamed_leaves_are_numbered_and_recorded_tensors_can_be_named():
    W1, b1, loss = mlp()
    graph = tape.graph(loss)
    assert [node.name for node in graph.nodes[:2]] == ["leaf0", "leaf1"]
    assert "%1 = add(%0, leaf1)" in repr(graph)

    x = tape.tensor(X)
    hidden = np.maximum(x @ W1 + b1, 0.0)
    loss = np.sum(hidden)
    named = tape.graph(loss, names={"W1": W1, "b1": b1, "hidden": hidden})
    listing = repr(named)
    assert "  hidden = maximum(%1)" in listing
    assert "  %3 = sum(hidden)" in listing
    assert r"hidden maximum\n(2, 4) float64" in named.to_dot()


def test_a_multi_output_op_is_one_node_with_several_shapes():
    A = tape.tensor([[2.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 4.0]], requires_grad=True)
    w, v = np.linalg.eigh(A)
    loss = np.sum(w) + np.sum(v[:, 0] ** 2)
    graph = tape.graph(loss, names={"A": A, "w": w})
    eigh = [node for node in graph.nodes if node.op == "eigh"]
    assert len(eigh) == 1
    (node,) = eigh
    assert node.multi_output
    assert node.shapes == ((3,), (3, 3)) and node.dtypes == ("float64", "float64")
    assert node.outputs == ("w", "%0[1]")
    listing = repr(graph)
    assert "  w, %0[1] = eigh(A)" in listing
    assert "(3,) float64, (3, 3) float64" in listing
    assert "sum(w)" in listing and "getitem(%0[1])" in listing

    dot = graph.to_dot()
    assert dot_labels(dot)[node.id] == r"%0 eigh\n[0] (3,) float64\n[1] (3, 3) float64"
    from_eigh = {edge for edge in dot_edges(dot) if edge[0] == node.id}
    assert from_eigh == {(node.id, "r1", "[0]"), (node.id, "r2", "[1]")}
    assert ("l0", node.id, "") in dot_edges(dot)


def test_a_chain_of_100000_records_is_walked_without_recursion():
    x = tape.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)  # a recursive walk would fail at once
    try:
        start = time.perf_counter()
        graph = tape.graph(y, names={"x": x})
        listing = repr(graph)
        dot = graph.to_dot()
        elapsed = time.perf_counter() - start
    finally:
        sys.setrecursionlimit(limit)
    assert graph.count("op") == 100_000 and graph.count("leaf") == 1
    assert len(graph.edges) == 100_000
    assert listing.count("\n") == 100_001  # the header, then one line per node
    assert listing.splitlines()[-1].startswith("  %99999 = multiply(%99998)")
    assert dot.count(" -> ") == 100_000
    assert elapsed < 30, f"the graph of a 100,000-record chain took {elapsed:.1f} s"


def test_released_records_are_reported_not_raised():
    W1, _, loss = mlp()
    loss.backward()
    graph = tape.graph(loss, names={"W1": W1})
    assert graph.released == 1
    listing = repr(graph)
    assert "note: 1 record(s) released by a backward without retain_graph" in listing
    assert "  %0 = sum(<released>)  () float64" in listing
    dot = graph.to_dot()
    assert "released by a backward" in dot and 'style="rounded,dashed"' in dot
    assert dot_edges(dot) == set()


def test_a_graph_sharing_records_with_an_earlier_backward_shows_what_is_left():
    x = tape.tensor([0.5, -1.0], requires_grad=True)
    hidden = np.tanh(x)
    np.sum(hidden).backward()  # releases tanh and this sum
    other = np.sum(hidden * 2.0)
    graph = tape.graph(other, names={"x": x})
    assert graph.released == 1
    assert [(node.op, node.released) for node in graph.nodes] == [
        ("tanh", True),
        ("multiply", False),
        ("sum", False),
    ]
    tanh = graph.nodes[0]
    assert tanh.shapes == () and "?" in repr(graph).splitlines()[2]
    assert graph.count("leaf") == 0  # the link to x went with the release


def test_retain_graph_keeps_the_links():
    *_, loss = mlp()
    loss.backward(retain_graph=True)
    graph = tape.graph(loss)
    assert graph.released == 0 and len(graph.edges) == 5


def test_gradient_norms_are_those_computed_by_hand():
    W1, b1, loss = mlp()
    graph = tape.graph(loss, names={"W1": W1, "b1": b1}, gradients=True)
    assert graph.gradient_norms == {}
    loss.backward()

    pre = X @ W1.numpy() + b1.numpy()
    mask = (pre > 0).astype(float)  # no ties with 0 here
    assert np.all(pre != 0)
    expected = {
        "%3": 1.0,
        "%2": np.linalg.norm(np.ones((2, 4))),
        "%1": np.linalg.norm(mask),
        "%0": np.linalg.norm(mask),
        "b1": np.linalg.norm(mask.sum(axis=0)),
        "W1": np.linalg.norm(X.T @ mask),
    }
    norms = graph.gradient_norms
    assert norms.keys() == expected.keys()
    for name, value in expected.items():
        np.testing.assert_allclose(norms[name], value, rtol=1e-12, err_msg=name)
    np.testing.assert_allclose(norms["W1"], np.linalg.norm(W1.grad), rtol=1e-12)

    listing = repr(graph).splitlines()
    assert listing[1].startswith("  W1 = leaf") and listing[1].endswith(f"|g| = {expected['W1']:.6g}")
    assert listing[-1].endswith("|g| = 1")
    assert rf"%1 add\n(2, 4) float64\n|g| = {expected['%1']:.4g}" in graph.to_dot()


def test_gradient_norms_of_each_output_of_a_multi_output_op():
    A = tape.tensor([[2.0, 1.0], [1.0, 3.0]], requires_grad=True)
    w, _ = np.linalg.eigh(A)
    loss = np.sum(w * np.array([1.0, 2.0]))  # v is not used: its cotangent is zero
    graph = tape.graph(loss, names={"A": A}, gradients=True)
    loss.backward()
    norms = graph.gradient_norms
    np.testing.assert_allclose(norms["%0[0]"], np.linalg.norm([1.0, 2.0]))
    assert norms["%0[1]"] == 0.0
    assert f"|g| = {np.linalg.norm([1.0, 2.0]):.6g}, 0" in repr(graph)


def test_gradient_norms_under_create_graph_and_after_remove_hooks():
    x = tape.tensor([1.0, 2.0], requires_grad=True)
    loss = np.sum(x**3)
    graph = tape.graph(loss, names={"x": x}, gradients=True)
    loss.backward(create_graph=True)
    np.testing.assert_allclose(graph.gradient_norms["x"], np.linalg.norm(3 * np.array([1.0, 2.0]) ** 2))

    graph.remove_hooks()
    x.grad = None
    np.sum(x**3 * 0.0).backward()
    loss.backward(create_graph=True)  # the hooks are gone: the norms stay as they were
    np.testing.assert_allclose(graph.gradient_norms["x"], np.linalg.norm([3.0, 12.0]))
    assert tape.jacobian(lambda t: t * 2.0)(np.array([1.0])).shape == (1, 1)


def test_outputs_that_are_leaves_or_constants():
    x = tape.tensor([1.0], requires_grad=True)
    constant = tape.tensor([2.0])
    graph = tape.graph(x, constant, names={"x": x})
    assert graph.outputs == ["x", "const"]
    assert repr(graph).splitlines() == [
        "Graph of 0 op(s) and 1 leaf tensor(s); outputs: x, const",
        "  x = leaf  (1,) float64",
    ]


def test_wrong_arguments_are_refused_with_a_clear_error():
    with pytest.raises(TypeError, match="graph: expected tensors, got ndarray as output 0"):
        tape.graph(np.ones(2))
    x = tape.tensor([1.0], requires_grad=True)
    with pytest.raises(TypeError, match="names maps names to tensors, got list for 'x'"):
        tape.graph(x * 2.0, names={"x": [1.0]})
    with pytest.raises(ValueError, match="expected 'op' or 'leaf'"):
        tape.graph(x).count("ops")


def test_repr_svg_renders_with_graphviz_and_dot():
    pytest.importorskip(
        "graphviz", reason="the graphviz package is not installed (pip install 'tape[graph]')"
    )
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot program is not on PATH")
    W1, _, loss = mlp()
    svg = tape.graph(loss, names={"W1": W1})._repr_svg_()
    assert svg is not None and "<svg" in svg and "matmul" in svg


def test_repr_svg_is_none_without_graphviz_or_dot(monkeypatch):
    *_, loss = mlp()
    graph = tape.graph(loss)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert graph._repr_svg_() is None
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/dot")
    monkeypatch.setitem(sys.modules, "graphviz", None)  # import graphviz then raises ImportError
    assert graph._repr_svg_() is None


def test_repr_svg_is_none_when_dot_fails(monkeypatch):
    pytest.importorskip(
        "graphviz", reason="the graphviz package is not installed (pip install 'tape[graph]')"
    )
    monkeypatch.setattr(shutil, "which", lambda name: "/nonexistent/dot")
    monkeypatch.setenv("PATH", "/nonexistent")  # the package looks for dot itself, and finds none
    *_, loss = mlp()
    assert tape.graph(loss)._repr_svg_() is None


def test_draw_with_matplotlib():
    matplotlib = pytest.importorskip("matplotlib", reason="matplotlib is not installed (tape[bench])")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.text import Annotation

    A = tape.tensor(np.eye(2) * [1.0, 2.0], requires_grad=True)
    w, v = np.linalg.eigh(A)
    W1, b1, loss = mlp()
    total = loss + np.sum(w) + np.sum(v)
    graph = tape.graph(total, names={"W1": W1, "b1": b1, "A": A}, gradients=True)
    total.backward()
    ax = graph.draw()
    try:
        texts = [text.get_text() for text in ax.texts]
        for node in graph.nodes:
            assert any(text.startswith(node.name) for text in texts), node.name
        assert any("matmul" in text and "|g|" in text for text in texts)
        assert "arg 1" in texts and "[0]" in texts  # edge labels
        arrows = [child for child in ax.get_children() if isinstance(child, Annotation)]
        assert len(arrows) == len(graph.edges)
        # Layers follow the tape: every edge points down the picture.
        places = {text.get_text().split("\n")[0].split(" ")[0]: text.get_position() for text in ax.texts}
        for edge in graph.edges:
            source = next(node.name for node in graph.nodes if node.id == edge.source)
            target = next(node.name for node in graph.nodes if node.id == edge.target)
            assert places[source][1] > places[target][1]
        ax.figure.canvas.draw()
    finally:
        plt.close(ax.figure)

    figure, given = plt.subplots()
    try:
        assert graph.draw(ax=given) is given
    finally:
        plt.close(figure)


def test_draw_without_matplotlib_names_the_extra(monkeypatch):
    *_, loss = mlp()
    graph = tape.graph(loss)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'tape\[bench\]'"):
        graph.draw()
