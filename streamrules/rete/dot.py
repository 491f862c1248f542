"""Graphviz export of a network (diagnostics, off the matching path)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streamrules.rete.network import ReteNetwork


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(net: ReteNetwork) -> str:
    """DOT text: alpha memories (boxes) and beta nodes, with their memory sizes."""
    lines = ["digraph rete {", "  rankdir=TB;", '  node [fontname="Helvetica", fontsize=10];']
    amem_ids: dict[int, str] = {}
    for i, a in enumerate(net.alpha_memories()):
        aid = f"a{i}"
        amem_ids[id(a)] = aid
        label = f"{a!r}\n{len(a.items)} facts"
        lines.append(f"  {aid} [shape=box, label={_q(label)}];")
    for n in net.nodes():
        nid = f"n{n.nid}"
        size = n.memory_size()
        label = "root" if n is net.root else n.label()
        if n.stores:
            label += f"\n{size} tokens"
        shape = "doubleoctagon" if n.kind == "production" else "ellipse"
        lines.append(f"  {nid} [shape={shape}, label={_q(label)}];")
        if n.parent is not None:
            lines.append(f"  n{n.parent.nid} -> {nid};")
        for amem in n.inputs():
            if id(amem) in amem_ids:
                lines.append(f"  {amem_ids[id(amem)]} -> {nid} [style=dashed];")
        partner = getattr(n, "partner", None)
        if partner is not None:
            lines.append(f"  n{partner.nid} -> {nid} [style=dotted];")
    lines.append("}")
    return "\n".join(lines) + "\n"
