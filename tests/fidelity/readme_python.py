"""Runs every ```python block of the README, in order, in the folder that holds the demo's
outputs (`demo-data/`). Usage: readme_python.py README.md FOLDER. Exit 1 at the first block that
raises, naming its line."""

import os
import pathlib
import sys
import traceback

readme, folder = pathlib.Path(sys.argv[1]).resolve(), sys.argv[2]
blocks, current, start = [], None, 0
for number, line in enumerate(readme.read_text().splitlines(), 1):
    if current is None and line.strip() == "```python":
        current, start = [], number + 1
    elif current is not None and line.startswith("```"):
        blocks.append((start, "\n".join(current)))
        current = None
    elif current is not None:
        current.append(line)
assert len(blocks) >= 3, f"only {len(blocks)} python blocks in {readme}"
os.chdir(folder)
for start, code in blocks:
    try:
        exec(compile(code, f"README.md:{start}", "exec"), {"__name__": "__readme__"})
    except Exception:
        traceback.print_exc()
        print(f"FAIL  README.md:{start}: the example raised")
        sys.exit(1)
    print(f"ok    README.md:{start}")
