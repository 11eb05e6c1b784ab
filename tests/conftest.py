"""Shared fixtures: programs are files (ensembles load SQ functions from the
program's source), so tests write them to a temporary directory."""
import textwrap

import pytest

from appliance.program.loader import load_program


@pytest.fixture
def write_program(tmp_path):
    """``write_program(source, name="prog")`` -> path of a program file holding ``source``."""
    counter = [0]

    def write(source: str, name: str = "") -> str:
        counter[0] += 1
        path = tmp_path / ("%s.py" % (name or "prog%d" % counter[0]))
        path.write_text(textwrap.dedent(source))
        return str(path)

    return write


@pytest.fixture
def build(write_program):
    """``build(source)`` -> the Graph built from a program with that source."""

    def build_graph(source: str, graph_name: str = ""):
        path = write_program(source)
        return load_program(path + (":" + graph_name if graph_name else ""))

    return build_graph
