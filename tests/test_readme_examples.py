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


def test_own_search_space_example(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "readme_own_space"}
    exec(compile(_example("own-space"), "README.md:own-space", "exec"), namespace)
    assert set(namespace["best"]) == {"block0", "block1", "block2", "width"}
    assert (tmp_path / "runs" / "own" / "best" / "child.keras").is_file()
    # The space has at most 20 lines (the bound issue #34 sets).
    source = _example("own-space")
    body = source[source.index("def conv_bn"):source.index("space = ")].strip().splitlines()
    assert len([line for line in body if line.strip()]) <= 20
