"""The README's examples run as written."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _example(name):
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    found = re.search(rf"<!-- example: {name} .*?-->\n```python\n(.*?)```", text, re.S)
    assert found, f"README example {name!r} not found"
    return found.group(1)


def test_own_search_space_and_every_method_examples(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "readme_own_space"}
    exec(compile(_example("own-space"), "README.md:own-space", "exec"), namespace)
    assert set(namespace["best"]) == {"block0", "block1", "block2", "width"}
    assert (tmp_path / "runs" / "own" / "best" / "child.keras").is_file()
    # The space has at most 20 lines (the bound issue #34 sets).
    source = _example("own-space")
    body = source[source.index("def conv_bn"):source.index("space = ")].strip().splitlines()
    assert len([line for line in body if line.strip()]) <= 20

    # Every method in a loop, on the same space.
    exec(compile(_example("every-method"), "README.md:every-method", "exec"), namespace)
    lines = [line for line in capsys.readouterr().out.splitlines() if "best of 8" in line]
    assert [line.split()[0] for line in lines] == [
        "spos", "pa", "da", "pada", "pa+interchoice-bias", "interchoice-split", "darts", "gmnas"]
    assert (tmp_path / "runs" / "own" / "gmnas" / "tree.json").is_file()
