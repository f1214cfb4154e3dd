"""The README's Python example runs as written."""

import re
from pathlib import Path


def test_readme_python_examples_run():
    text = (Path(__file__).parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    namespace: dict = {}  # one session: later examples use names the earlier ones defined
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert namespace["arch"].name == "sep3x64-sep3x128-att9x320-att3x512"
    assert namespace["same"] == namespace["arch"]
    assert namespace["report"].deployable and namespace["report"].throughput_fps > 0
