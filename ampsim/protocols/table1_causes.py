"""Table 1's failure causes (Section 4.1, Table 1; docs/synchronizer.md, section 3): every way a
row of the literal table misbehaves, found in a recorded run, and the situations the corrected
synchronizer meets that Table 1 has no row for."""
from __future__ import annotations

from .synchronizer import Table1Literal

__all__ = ["CAUSES", "literal_causes", "synchronizer_events"]


CAUSES = {
    "origin-keeps-state": "row 2 (origin=1): s' = s keeps the origin's own state in its neighbour sum",
    "degree-one": "row 3 (u=0): w' = D-2 = -1 when D = 1, so the node never reaches w = 0",
    "u0-takes-safe": "row 3 (u=0): fires on a safe message and takes its payload as a neighbour state",
    "u0-takes-stale-pulse": "row 3 (u=0): fires on a pulse of a layer already started; that layer is never computed",
    "u0-takes-early-pulse": "row 3 (u=0): fires on a pulse two or more layers ahead",
    "u0-nothing-proceeds": "rows 4/5 bring u to 0 and emit no pulse: the node waits for a later message, and none comes",
    "w0-refires": "row 5 (w=0): w' = 0, so the next pulse computes one more layer",
    "early-pulse": "rows 5/6 (w=0, pulse=1): add a pulse of a later layer into s (no room for two layers)",
    "late-pulse": "rows 5/6 (w=0, pulse=1): add a pulse of an earlier layer into s",
}
"""Every way Table 1 goes wrong that the sweep observes, by the row responsible (docs/synchronizer.md)."""


def literal_causes(rule: Table1Literal, steps: list, index: dict) -> list[tuple[int, int, str]]:
    """(delivery, node, cause) for every step of a Table 1 run where a row misbehaves (see :data:`CAUSES`).

    Each message is tagged with its sender's pulse number (row 2/3 firings so far), so a
    pulse can be told apart as belonging to this node's layer, a later or an earlier one.
    """
    pulses: dict[int, int] = {}
    computed: dict[int, int] = {}
    tag: dict[int, int] = {}
    waiting: dict[int, int] = {}
    found = []
    for view, state, message, new, out, _, k in steps:
        v = index[id(view)]
        r = rule.row(state, message)
        mine = pulses.get(v, 0)
        theirs = tag.get(id(message))
        is_pulse = message.kind == "pulse"
        if r == 2 and any(x != 0.0 for x in state[0]):
            found.append((k, v, "origin-keeps-state"))
        if r == 3:
            if view.degree == 1:
                found.append((k, v, "degree-one"))
            if message.kind == "safe":
                found.append((k, v, "u0-takes-safe"))
            elif is_pulse and theirs <= mine:
                found.append((k, v, "u0-takes-stale-pulse"))
            elif is_pulse and theirs > mine + 1:
                found.append((k, v, "u0-takes-early-pulse"))
        if r == 5:
            if computed.get(v, 0):
                found.append((k, v, "w0-refires"))
            computed[v] = computed.get(v, 0) + 1
        if r in (5, 6) and is_pulse and theirs != mine:
            found.append((k, v, "early-pulse" if theirs > mine else "late-pulse"))
        if r in (2, 3):
            pulses[v] = mine + 1
            computed[v] = 0
        if out is not None:
            tag[id(out)] = pulses.get(v, 0)
        if r in (4, 5) and new[2] == 0 and new[3] >= 1 and computed.get(v, 0):
            waiting[v] = k  # safe, u reached 0: only a *later* message can fire row 3 and start the next pulse
        else:
            waiting.pop(v, None)
    # a node whose last step left it waiting at u = 0 with layers to go: nothing ever started its next pulse
    found.extend((k, v, "u0-nothing-proceeds") for v, k in waiting.items())
    found.sort(key=lambda c: c[0])
    return found


def synchronizer_events(steps: list) -> dict:
    """Counts of the situations Table 1 has no row for, as the corrected synchronizer meets them.

    ``early_pulse``: a pulse reaches a node that is safe but still waits for safe messages
    (it must keep s for its next pulse and sum the early pulse elsewhere: the second
    accumulator); ``pulse_safe``: one activation both completes a layer and proceeds
    (a message with both bits).
    """
    early = both = 0
    for _, state, message, _, out, _, _ in steps:
        p = message.payload
        if p is not None and p[1] and state[5] == 1 and state[3] - p[2] > 0:
            early += 1
        if out is not None and out.payload[1] and out.payload[2]:
            both += 1
    return {"early_pulse": early, "pulse_safe": both}
