"""pandas reads onc-pipe's catalog.csv: one row per clip (per sidecar in the tree), every path
exists, times parse, coverage lies in [0, 1]. Usage: catalog.py OUTPUT_DIR"""

import pathlib
import sys

import pandas as pd

root = pathlib.Path(sys.argv[1])
catalog = pd.read_csv(root / "catalog.csv")
sidecars = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*/clips/*/*.json"))
assert sorted(catalog["sidecar"]) == sidecars, (list(catalog["sidecar"]), sidecars)
for paths in catalog["paths"]:
    for path in paths.split(";"):
        assert (root / path).is_file(), path
for column in ["requested_start", "requested_end", "padded_start", "padded_end", "first", "last"]:
    times = pd.to_datetime(catalog[column], utc=True)
    assert times.notna().all(), column
assert ((catalog["coverage"] >= 0) & (catalog["coverage"] <= 1)).all()
assert (pd.to_datetime(catalog["first"], utc=True) >= pd.to_datetime(catalog["padded_start"], utc=True)).all()
print(f"catalog.csv: {len(catalog)} clips, {catalog['media'].value_counts().to_dict()}, every path exists")
