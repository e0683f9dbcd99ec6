"""One benchmark, two trees, one run: the figures of a past commit and of this tree, side by side.

The machine is shared and noisy, so a figure from another day says little; a refactor is judged by
running the same benchmark script against the old code and the new, alternating, in the same run.
This script does that: it checks the old commit out into a temporary git worktree (named by the
commit's hash, so that ``--rev HEAD`` is the HEAD of now, not of the first run), runs
``bench/NAME.py`` (this tree's script, so both trees are measured by the same code) once with the
old tree first on ``PYTHONPATH`` and once with this one, ``--rounds`` times in alternation, and
prints, for every output line that carries numbers, the median of each number in both trees and
the ratio new / old.

Whether a ratio above 1 is better or worse depends on the figure (frames per second, or seconds),
so the table shows both values; the line's own words say which it is.

Run: ``.venv/bin/python bench/compare.py [--rev 7cb75e0] [--rounds 3] NAME [-- ARGS]`` (``core``,
``codec``, ``replay``, ``sim_scale -- --sizes 1000,10000 --modes multicast``, ...): this script's own
options come before NAME, and everything after NAME goes to the benchmark. The scripts import pyvxlan through its
public paths only, which both trees have.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def resolve(rev: str) -> str:
    """The commit ``rev`` names now (``HEAD`` and branch names move): its full hash."""
    done = subprocess.run(
        ["git", "-C", str(HERE), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"--rev {rev}: not a commit of this repository")
    return done.stdout.strip()


def worktree(commit: str) -> Path:
    """A checkout of ``commit`` (a full hash) in the temporary folder, named by the commit: made once,
    reused when it is there, checked out again when something else is (a folder named by a rev
    like ``HEAD``, as an older version of this script made them, would hold whatever that rev
    named then)."""
    where = Path(tempfile.gettempdir()) / f"pyvxlan-bench-{commit[:12]}"
    if not (where / "pyvxlan" / "__init__.py").exists():
        subprocess.run(["git", "-C", str(HERE), "worktree", "add", "--detach", str(where), commit], check=True)
    head = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    if head.stdout.strip() != commit:
        subprocess.run(["git", "-C", str(where), "checkout", "--quiet", "--detach", commit], check=True)
    return where


def run(script: Path, args: list[str], tree: Path) -> str:
    env = dict(os.environ, PYTHONPATH=str(tree))
    done = subprocess.run(
        [sys.executable, str(script), *args], env=env, capture_output=True, text=True, check=False, cwd=HERE
    )
    # Status 1 with figures and no traceback is a benchmark saying a goal was missed: still figures.
    if done.returncode and (done.returncode != 1 or "Traceback" in done.stderr or not done.stdout):
        raise SystemExit(f"{script.name} failed against {tree} (status {done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


def numbers(line: str) -> tuple[str, list[float]]:
    """The line with each number replaced by ``#`` and its spacing made single, and the numbers.

    Numbers of another width pad a table's columns differently: the spacing is not part of a line's
    identity.
    """
    found = [float(m.group().replace(",", "")) for m in NUMBER.finditer(line)]
    return " ".join(NUMBER.sub("#", line).split()), found


def collect(outputs: list[str]) -> dict[tuple[str, int], list[list[float]]]:
    """Per (template, occurrence) line: one list of numbers per run. The occurrence tells apart lines
    of one template (two "ratio" lines), whatever else a tree's output has in between."""
    table: dict[tuple[str, int], list[list[float]]] = {}
    for out in outputs:
        seen: dict[str, int] = {}
        for line in out.splitlines():
            template, found = numbers(line)
            if found:
                seen[template] = seen.get(template, -1) + 1
                table.setdefault((template, seen[template]), []).append(found)
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bench", help="a script in bench/, without .py (core, codec, replay, sim_scale, ...)")
    parser.add_argument("--rev", default="7cb75e0", help="the old commit (default: the tree before issue 11)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each tree, alternating (default 3)")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the benchmark, after --")
    args = parser.parse_args()
    if "--" in args.args:  # the separator, wherever argparse left it
        args.args.remove("--")
    script = HERE / "bench" / f"{args.bench}.py"
    commit = resolve(args.rev)
    old = worktree(commit)
    outs: dict[str, list[str]] = {"old": [], "new": []}
    for r in range(args.rounds):
        for name, tree in (("old", old), ("new", HERE)) if r % 2 == 0 else (("new", HERE), ("old", old)):
            outs[name].append(run(script, args.args, tree))
            print(f"round {r + 1}: {name} done", file=sys.stderr, flush=True)
    before, after = collect(outs["old"]), collect(outs["new"])
    named = args.rev if commit.startswith(args.rev) else f"{args.rev} ({commit[:7]})"
    print(f"bench/{args.bench}.py {' '.join(args.args)}: {named} (old) against this tree (new), ", end="")
    print(f"median of {args.rounds} alternating runs each")
    for key, runs in after.items():
        if key not in before or len({len(x) for x in runs + before[key]}) != 1:
            continue
        template = key[0]
        cells = []
        for j in range(len(runs[0])):
            o = statistics.median(x[j] for x in before[key])
            n = statistics.median(x[j] for x in runs)
            if o == n:
                continue  # a count or a setting, the same in both trees
            cells.append(f"{o:,.4g} -> {n:,.4g} ({n / o:.2f}x)" if o else f"{o:,.4g} -> {n:,.4g}")
        if cells:
            print(f"  {template}\n      " + "; ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
