"""The Python tool (onc-hydrophone-data, PyPI) runs the seed's scenario 2 against the simulator.

Usage: python python_tool.py BASE_URL TIME_SCALE OUT_DIR TOKEN RESULT_JSON [no-validation]

Called by benches/peers.rs. Its own "sampled windows" entry point does the work:
`HydrophoneDownloader.download_sampled_spectrograms(device, start, end, total_spectrograms=160,
spectrograms_per_request=12, data_product_options=...)`, which spaces ceil(160 / 12) = 14 windows
of 55 minutes evenly over the range and hands them to `run_parallel_windows` with the tool's
defaults: a 3 s stagger between submissions (request + run), poll passes every 30 s over the
pending runs with 4 threads, each pass trying `downloadDataProduct` (onc 2.6.0: download index
1, 2, ... with up to 10 tries 2 s apart on 202), at most 6 attempts per run, then a blocking
`runDataProduct(waitComplete=True)` for what is left; after each run's download it re-validates
every MAT file in its folder (`validate_spectrograms`: scipy.io.loadmat of each).

Waits are scaled by sim_time (imported first; see there). Not scaled: the tool's CPU work, which
the simulator's time scale magnifies (a second of loadmat is 1 / time_scale simulated seconds).
With `no-validation` the driver replaces `validate_spectrograms` by a no-op, so the benchmark can
show the tool without that work, measured rather than subtracted. The driver also times:
* startup_s: interpreter start to the tool's first call (imports: torch, scipy, ...);
* validate_s: time inside `validate_spectrograms`, which the tool serialises behind its own lock;
* cpu_s: process CPU time (all threads) during the call.
Writes these, the tool's summary and the number of MAT files on disk to RESULT_JSON.
"""

import json
import sys
import time

STARTED = time.perf_counter()

import sim_time  # noqa: E402 - must patch before onc is imported

BASE_URL, TIME_SCALE, OUT_DIR, TOKEN, RESULT = sys.argv[1:6]
VALIDATE = sys.argv[6:7] != ["no-validation"]
sim_time.install(BASE_URL, float(TIME_SCALE))

from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

from onc_hydrophone_data.data.hydrophone_downloader import HydrophoneDownloader  # noqa: E402

validate = {"seconds": 0.0, "calls": 0}
original_validate = HydrophoneDownloader.validate_spectrograms


def timed_validate(self, *args, **kwargs):
    began = time.perf_counter()
    try:
        if not VALIDATE:
            return {"total_files": 0, "anomalies": 0, "anomaly_details": [], "elapsed_seconds": 0.0}
        return original_validate(self, *args, **kwargs)
    finally:
        validate["seconds"] += time.perf_counter() - began
        validate["calls"] += 1


HydrophoneDownloader.validate_spectrograms = timed_validate

downloader = HydrophoneDownloader(TOKEN, OUT_DIR)
startup = time.perf_counter() - STARTED
cpu_before = time.process_time()
began = time.perf_counter()
error = None
summary = None
try:
    summary = downloader.download_sampled_spectrograms(
        "ICLISTENHF6324",
        datetime(2024, 4, 1, tzinfo=timezone.utc),
        datetime(2024, 4, 3, tzinfo=timezone.utc),
        total_spectrograms=160,
        spectrograms_per_request=12,
        tag="sampled",
        data_product_options={
            "dpo_spectralDataDownsample": 2,
            "dpo_hydrophoneDataDiversionMode": "OD",
            "dpo_spectrogramConcatenation": "None",
        },
    )
except Exception as exc:  # noqa: BLE001 - reported in the result, the benchmark prints it
    error = repr(exc)
work = time.perf_counter() - began
cpu = time.process_time() - cpu_before

Path(RESULT).write_text(
    json.dumps(
        {
            "startup_s": startup,
            "work_s": work,
            "validate_s": validate["seconds"],
            "validate_calls": validate["calls"],
            "cpu_s": cpu,
            "slept": sim_time.stats(),
            "mat_files": len(list(Path(OUT_DIR).rglob("*.mat"))),
            "summary": summary,
            "error": error,
        },
        default=str,
    )
)
