import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_import_kerasnas_exposes_every_subpackage_the_readme_names():
    # Issue #34: `import kerasnas; kerasnas.evaluation...`, as the README
    # writes it, was an AttributeError. A fresh process: in this one another
    # test may have imported the subpackages already.
    with open(os.path.join(ROOT, "README.md")) as f:
        named = sorted(set(re.findall(r"\bkerasnas\.([a-z_]+)\b", f.read())))
    assert "evaluation" in named
    code = (
        "import kerasnas, sys; missing = [n for n in sys.argv[1:] if not hasattr(kerasnas, n)]; "
        "print(missing); sys.exit(1 if missing else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *named], capture_output=True, text=True, cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
