"""The README's Python example runs as written."""

import re
from pathlib import Path


def test_readme_python_examples_run(tmp_path, monkeypatch):
    root = Path(__file__).parents[1]
    text = (root / "README.md").read_text()
    (tmp_path / "docs").symlink_to(root / "docs")  # the examples' relative paths; nas.db lands in tmp_path
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    namespace: dict = {}  # one session: later examples use names the earlier ones defined
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["arch"].name == "sep3x64-sep3x128-att9x320-att3x512.c8b058"
    assert namespace["same"] == namespace["arch"]
    assert namespace["report"].deployable and namespace["report"].throughput_fps > 0
    job = namespace["job"]
    assert job.status == "completed" and job.n_trials == 8
    assert all(c.metrics["latency_ms"] < 0.5 for c in namespace["front"])
