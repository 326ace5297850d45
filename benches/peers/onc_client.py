"""ONC's official client (onc 2.6.0, PyPI) orders the benchmark's windows one after another.

Usage: python onc_client.py BASE_URL TIME_SCALE OUT_DIR TOKEN WINDOWS_JSON RESULT_JSON

Called by benches/peers.rs. WINDOWS_JSON is a list of [dateFrom, dateTo] pairs: the ONC requests
onc-pipe's plan makes for the same manifest. For each, in order, one `ONC.orderDataProduct`
(HSD mat, the manifest's dpo_* options, includeMetadataFile=False so every client fetches the
same files; maxRetries 0 = unlimited, the default). orderDataProduct is the client's documented
one-call path: request, one `run` call, then download index 1, 2, ... ; index 1 answers 202 until
the run is complete and the client retries it every `pollPeriod` (2 % of ONC's estimate, 1-10 s).
The official client has no parallel ordering; a user orders window after window.

Waits are scaled by sim_time (imported first; see there). Writes the wall time of the orders,
the files downloaded and any error to RESULT_JSON.
"""

import json
import sys
import time

import sim_time  # must patch before onc is imported

BASE_URL, TIME_SCALE, OUT_DIR, TOKEN, WINDOWS, RESULT = sys.argv[1:7]
sim_time.install(BASE_URL, float(TIME_SCALE))

from pathlib import Path  # noqa: E402

from onc import ONC  # noqa: E402

client = ONC(TOKEN, showInfo=False, showWarning=False, outPath=OUT_DIR, timeout=60)
windows = json.loads(Path(WINDOWS).read_text())
began = time.perf_counter()
files = 0
error = None
try:
    for date_from, date_to in windows:
        result = client.orderDataProduct(
            {
                "deviceCode": "ICLISTENHF6324",
                "dataProductCode": "HSD",
                "extension": "mat",
                "dateFrom": date_from,
                "dateTo": date_to,
                "dpo_spectralDataDownsample": 2,
                "dpo_hydrophoneDataDiversionMode": "OD",
                "dpo_spectrogramConcatenation": "None",
            },
            includeMetadataFile=False,
        )
        files += sum(1 for row in result["downloadResults"] if row["downloaded"])
except Exception as exc:  # noqa: BLE001 - reported in the result, the benchmark prints it
    error = repr(exc)
work = time.perf_counter() - began

Path(RESULT).write_text(
    json.dumps(
        {
            "work_s": work,
            "files_downloaded": files,
            "slept": sim_time.stats(),
            "mat_files": len(list(Path(OUT_DIR).rglob("*.mat"))),
            "error": error,
        }
    )
)
