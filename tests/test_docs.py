"""The docs are the contract: what they show the software printing, it prints.

Every shell transcript in README.md and docs/ (a fenced block whose first line
starts with ``$ ``) is run, command by command, in a scratch directory that
holds the examples and the venv, and its output must be exactly what the
block shows (a line ``...`` stands for any lines). Every Python block followed
at once by a plain block is run and must print that block. Python blocks
marked ``<!-- a whole program -->`` must build and simulate (on the system file
the marker names, as in ``<!-- a whole program, simulated with
examples/x.system.json -->``). And the docs cite nothing outside the
repository.
"""
import os
import re
import subprocess
import sys
import textwrap
from typing import List, NamedTuple

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = [os.path.join(ROOT, "README.md")] + sorted(
    os.path.join(ROOT, "docs", name) for name in os.listdir(os.path.join(ROOT, "docs")) if name.endswith(".md"))
WHOLE_PROGRAM = re.compile(r"^<!-- a whole program(?:, simulated with (\S+))? -->$")
FENCE = re.compile(r"^```(\w*)\s*$")


class Block(NamedTuple):
    doc: str
    line: int
    lang: str
    text: str
    before: str  # the prose line just before the block


def blocks(path: str) -> List[Block]:
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    found = []
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match:
            end = i + 1
            while not lines[end].startswith("```"):
                end += 1
            before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            found.append(Block(os.path.relpath(path, ROOT), i + 1, match.group(1), "\n".join(lines[i + 1:end]), before))
            i = end
        i += 1
    return found


def transcripts(path: str) -> List[Block]:
    return [b for b in blocks(path) if not b.lang and b.text.startswith("$ ")]


def python_with_output(path: str):
    found = blocks(path)
    return [(code, out) for code, out in zip(found, found[1:])
            if code.lang == "python" and not out.lang and not out.text.startswith("$ ")
            and out.line == code.line + code.text.count("\n") + 3]


def _scratch(tmp_path) -> str:
    for name in ("examples", ".venv"):
        os.symlink(os.path.join(ROOT, name), str(tmp_path / name))
    return str(tmp_path)


def _environment():
    env = dict(os.environ, COLUMNS="100", TMPDIR="/tmp", PYTHONHASHSEED="0")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def _matches(expected: List[str], actual: List[str]) -> bool:
    """Line by line; ``...`` matches any run of lines (also none)."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(_matches(expected[1:], actual[i:]) for i in range(len(actual) + 1))
    return bool(actual) and expected[0] == actual[0] and _matches(expected[1:], actual[1:])


def _commands(block: Block):
    """``(command, expected output lines)`` pairs of one transcript; ``\\`` continues a command."""
    pairs, lines = [], block.text.splitlines()
    i = 0
    while i < len(lines):
        command = lines[i][2:]
        while command.endswith("\\"):
            i += 1
            command = command[:-1] + " " + lines[i].strip()
        i += 1
        expected = []
        while i < len(lines) and not lines[i].startswith("$ "):
            expected.append(lines[i])
            i += 1
        pairs.append((command, expected))
    return pairs


@pytest.mark.timeout(600)
@pytest.mark.parametrize("doc", [d for d in DOCS if transcripts(d)], ids=lambda d: os.path.relpath(d, ROOT))
def test_every_transcript_prints_what_the_docs_show(doc, tmp_path):
    cwd = _scratch(tmp_path)
    for block in transcripts(doc):
        for command, expected in _commands(block):
            done = subprocess.run(["bash", "-c", command + " 2>&1"], cwd=cwd, env=_environment(),
                                  capture_output=True, text=True, timeout=300)
            actual = done.stdout.rstrip("\n").splitlines() if done.stdout.strip() else []
            assert _matches(expected, actual), "%s:%d: `%s` printed:\n%s\n--- the docs show:\n%s" % (
                block.doc, block.line, command, "\n".join(actual), "\n".join(expected))


@pytest.mark.timeout(600)
@pytest.mark.parametrize("doc", [d for d in DOCS if python_with_output(d)], ids=lambda d: os.path.relpath(d, ROOT))
def test_every_python_example_prints_what_the_docs_show(doc, tmp_path):
    cwd = _scratch(tmp_path)
    for code, out in python_with_output(doc):
        done = subprocess.run([sys.executable, "-c", code.text], cwd=cwd, env=_environment(), capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, "%s:%d:\n%s" % (code.doc, code.line, done.stderr)
        assert _matches(out.text.splitlines(), done.stdout.rstrip("\n").splitlines()), \
            "%s:%d printed:\n%s\n--- the docs show:\n%s" % (code.doc, code.line, done.stdout, out.text)


WHOLE_PROGRAMS = [b for d in DOCS for b in blocks(d) if b.lang == "python" and WHOLE_PROGRAM.match(b.before.strip())]


def test_the_readme_starts_with_a_whole_program():
    assert WHOLE_PROGRAMS and WHOLE_PROGRAMS[0].doc == "README.md"


@pytest.mark.parametrize("block", WHOLE_PROGRAMS, ids=lambda b: "%s:%d" % (b.doc, b.line))
def test_every_whole_program_in_the_docs_builds_and_simulates(block, tmp_path):
    path = tmp_path / "program.py"
    path.write_text(textwrap.dedent(block.text))
    system = WHOLE_PROGRAM.match(block.before.strip()).group(1)
    done = subprocess.run([sys.executable, "-m", "appliance", "simulate", str(path), "--duration", "0.2"]
                          + (["--system", os.path.join(ROOT, system)] if system else []),
                          capture_output=True, text=True, timeout=120, env=_environment())
    assert done.returncode == 0, "%s:%d: %s" % (block.doc, block.line, done.stderr)


OUTSIDE = re.compile(r"DESIGN\.md|\.\./shared|/work/shared|reference/ttpython|seeds/TT")


def test_nothing_cites_what_is_outside_the_repository():
    sources = [os.path.join(d, f) for d, _, files in os.walk(os.path.join(ROOT, "appliance"))
               for f in files if f.endswith(".py")]
    offenders = []
    for path in DOCS + sources:
        with open(path, encoding="utf-8") as handle:
            offenders.extend("%s:%d: %s" % (os.path.relpath(path, ROOT), number, line.strip())
                             for number, line in enumerate(handle, 1) if OUTSIDE.search(line))
    assert offenders == []
