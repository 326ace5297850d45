"""Fidelity test: ONC's official Python client (onc 2.6.0) against `onc-pipe simulate`.

Usage: python fidelity.py BASE_URL OUT_DIR

Exercises orderDataProduct (HSD mat with the metadata file), downloadResultsOnly,
getArchivefileByDevice(allPages=True), downloadArchivefile, cancelDataProduct /
restartDataProduct, the discovery calls (getDeployments, getLocations, getDevices,
getDataAvailability) and the 400/401 error paths; loads every MAT with scipy.io.loadmat and every
FLAC with soundfile, comparing samples with the simulator's content oracle. Prints
"N passed, M failed" and exits 1 on any failure.
"""

import json
import sys
import traceback
import urllib.request
from pathlib import Path

import numpy as np
import requests
import scipy.io
import soundfile
from onc import ONC

BASE_URL = sys.argv[1]
OUT = Path(sys.argv[2])
TOKEN = "0f6e2f44-fidelity-token-1234"
DEVICE = "ICLISTENHF6324"
HSD = {
    "deviceCode": DEVICE,
    "dataProductCode": "HSD",
    "extension": "mat",
    "dateFrom": "2024-04-01T00:00:00.000Z",
    "dateTo": "2024-04-01T00:12:00.000Z",
    "dpo_spectralDataDownsample": 2,
    "dpo_hydrophoneDataDiversionMode": "OD",
    "dpo_spectrogramConcatenation": "None",
}

results = []


def check(name):
    def wrap(fn):
        try:
            fn()
            results.append((name, None))
            print(f"ok    {name}", flush=True)
        except Exception as exc:  # noqa: BLE001 - report every failure, keep going
            results.append((name, exc))
            print(f"FAIL  {name}: {exc!r}", flush=True)
            traceback.print_exc()
        return fn

    return wrap


def client(out, token=TOKEN):
    onc = ONC(token, showInfo=False, showWarning=False, outPath=str(out), timeout=30)
    onc.baseUrl = BASE_URL  # no constructor argument exists; the trailing slash is required
    return onc


def oracle_samples(filename, count):
    url = f"{BASE_URL}_sim/oracle/audio?filename={filename}&count={count}"
    with urllib.request.urlopen(url) as response:
        return np.array(json.load(response)["samples"], dtype=np.int64)


def check_mat(path):
    mat = scipy.io.loadmat(str(path), squeeze_me=False)
    spect = mat["SpectData"][0, 0]
    meta = mat["Meta"][0, 0]
    for field in ("PSD", "frequency", "time", "processingComment"):
        assert field in spect.dtype.names, f"{path.name}: SpectData has no {field}"
    for field in ("deviceCode", "deviceCategoryCode", "lat", "lon", "depth"):
        assert field in meta.dtype.names, f"{path.name}: Meta has no {field}"
    psd, freq, time = spect["PSD"], spect["frequency"].ravel(), spect["time"].ravel()
    assert psd.shape == (freq.size, time.size), f"{path.name}: PSD {psd.shape} vs {freq.size}x{time.size}"
    assert np.isneginf(psd[0]).all(), f"{path.name}: DC row is not -Inf"
    assert np.all(np.diff(time) > 0), f"{path.name}: time not increasing"
    assert 738000 < time[0] < 740000, f"{path.name}: time is not a MATLAB datenum: {time[0]}"
    assert str(meta["deviceCode"][0]) == DEVICE


@check("orderDataProduct HSD mat with metadata file")
def _():
    out = OUT / "order"
    result = client(out).orderDataProduct(dict(HSD), includeMetadataFile=True)
    files = [row["file"] for row in result["downloadResults"] if row["status"] == "complete"]
    mats = [f for f in files if f.endswith(".mat")]
    metas = [f for f in files if f.endswith("_META.xml")]
    assert len(mats) >= 3, f"expected ~3-4 MAT files for 12 minutes, got {files}"
    assert len(metas) == 1, f"no metadata file in {files}"
    for name in mats:
        assert "_plotRes" in name, name
        check_mat(out / name)


@check("orderDataProduct downloadResultsOnly")
def _():
    result = client(OUT / "links").orderDataProduct(dict(HSD), downloadResultsOnly=True, includeMetadataFile=False)
    rows = result["downloadResults"]
    assert len(rows) >= 3 and all("dpRunId=" in row["url"] for row in rows), rows
    assert not any((OUT / "links").glob("*.mat")), "downloadResultsOnly downloaded files"


@check("getArchivefileByDevice allPages with returnOptions=all")
def _():
    onc = client(OUT / "archive")
    filters = {
        "deviceCode": DEVICE,
        "dateFrom": "2024-04-01T00:00:00.000Z",
        "dateTo": "2024-04-01T01:00:00.000Z",
        "fileExtension": "flac",
        "returnOptions": "all",
        "rowLimit": 5,
    }
    result = onc.getArchivefileByDevice(filters, allPages=True)
    files = result["files"]
    names = [row["filename"] for row in files]
    assert 11 <= len(names) <= 13, f"an hour is ~12 files, got {len(names)}"
    assert len(set(names)) == len(names), "pages overlap"
    assert all(name.endswith(".flac") for name in names)
    assert result["next"] is None
    starts = [row["dateFrom"] for row in files]
    assert starts == sorted(starts)


@check("downloadArchivefile: FLAC samples equal the oracle")
def _():
    onc = client(OUT / "flac")
    listing = onc.getArchivefileByDevice(
        {"deviceCode": DEVICE, "dateFrom": "2024-04-01T04:20:00.000Z", "dateTo": "2024-04-01T04:30:00.000Z", "fileExtension": "flac"},
        allPages=True,
    )
    names = listing["files"]
    assert names and all(isinstance(n, str) for n in names), names
    for name in names[:2]:
        info = onc.downloadArchivefile(name, overwrite=True)
        assert info["status"] == "completed", info
        data, rate = soundfile.read(str(OUT / "flac" / name), dtype="int32")
        info_sf = soundfile.info(str(OUT / "flac" / name))
        assert info_sf.subtype == "PCM_24", info_sf.subtype
        samples = data.astype(np.int64) >> 8  # soundfile scales 24-bit into the top of int32
        expected = oracle_samples(name, len(samples))
        assert len(samples) == len(expected) and np.array_equal(samples, expected), f"{name}: samples differ"
        assert rate > 0


@check("cancelDataProduct then restartDataProduct")
def _():
    onc = client(OUT / "cancel")
    request = onc.requestDataProduct(dict(HSD))
    request_id = request["dpRequestId"]
    onc.runDataProduct(request_id, waitComplete=False)
    cancelled = onc.cancelDataProduct(request_id)
    assert cancelled and cancelled[0]["status"] == "cancelled", cancelled
    run = onc.runDataProduct(request_id, waitComplete=True)
    assert run["fileCount"] == 0
    restarted = onc.restartDataProduct(request_id, waitComplete=True)
    assert restarted["fileCount"] >= 3, restarted


@check("400: an invalid extension gives ONC's error envelope")
def _():
    bad = dict(HSD, extension="xyz")
    try:
        client(OUT / "bad").requestDataProduct(bad)
    except requests.HTTPError as error:
        text = str(error)
        assert "API Error 127" in text and "(parameter: extension)" in text, text
        return
    raise AssertionError("no error raised")


@check("401: an invalid token")
def _():
    try:
        client(OUT / "bad", token="invalid-token").requestDataProduct(dict(HSD))
    except requests.HTTPError as error:
        assert "Status 401" in str(error), str(error)
        return
    raise AssertionError("no error raised")


@check("getDeployments: BACAX had two hydrophones, swapped on 2023-06-15T18:00Z")
def _():
    rows = client(OUT / "discovery").getDeployments({"locationCode": "BACAX", "deviceCategoryCode": "HYDROPHONE"})
    devices = [row["deviceCode"] for row in rows]
    assert devices == ["ICLISTENHF1251", "ICLISTENHF6406"], rows
    assert rows[0]["end"] == rows[1]["begin"] == "2023-06-15T18:00:00.000Z", rows
    assert rows[1]["end"] is None, rows
    mine = client(OUT / "discovery").getDeployments({"deviceCode": DEVICE})
    assert [row["locationCode"] for row in mine] == ["SEVIP"], mine


@check("getLocations: a device's site, with booleans the client keeps as booleans")
def _():
    rows = client(OUT / "discovery").getLocations({"deviceCode": DEVICE})
    assert [row["locationCode"] for row in rows] == ["SEVIP"], rows
    assert rows[0]["hasDeviceData"] is True, rows


@check("getDevices: the sample period is the configured rate's")
def _():
    rows = client(OUT / "discovery").getDevices({"deviceCode": DEVICE})
    assert [row["deviceCode"] for row in rows] == [DEVICE], rows
    assert rows[0]["deviceCategoryCode"] == "HYDROPHONE", rows
    period = rows[0]["dataRating"][0]["samplePeriod"]
    assert abs(period - 1 / 8000) < 1e-12, period  # the fidelity run simulates 8 kHz


@check("getDataAvailability: archived FLAC in the window, none in FGPD's gap")
def _():
    onc = client(OUT / "discovery")
    result = onc.getDataAvailability(
        {"deviceCode": DEVICE, "dateFrom": "2024-04-01T00:00:00.000Z", "dateTo": "2024-04-01T01:00:00.000Z", "extension": "flac"}
    )
    rows = result["availableDataProducts"]
    assert len(rows) == 1 and rows[0]["dataProductCode"] == "AD", result
    assert 11 <= rows[0]["fileCount"] <= 13 and rows[0]["totalFileSize"] > 0, rows
    listing = onc.getArchivefileByDevice(
        {"deviceCode": DEVICE, "dateFrom": "2024-04-01T00:00:00.000Z", "dateTo": "2024-04-01T01:00:00.000Z",
         "fileExtension": "flac", "returnOptions": "all"},
        allPages=True,
    )
    assert rows[0]["fileCount"] == len(listing["files"]), (rows, len(listing["files"]))
    assert rows[0]["totalFileSize"] == sum(f["fileSize"] for f in listing["files"])
    gap = onc.getDataAvailability({"locationCode": "FGPD", "dateFrom": "2022-12-01", "dateTo": "2022-12-02"})
    assert gap["availableDataProducts"] == [], gap


@check("400: an unknown deviceCode on discovery and delivery")
def _():
    onc = client(OUT / "discovery")
    calls = [
        lambda: onc.getDeployments({"deviceCode": "ICLISTENHF9999"}),
        lambda: onc.getDevices({"deviceCode": "ICLISTENHF9999"}),
        lambda: onc.getDataAvailability({"deviceCode": "ICLISTENHF9999"}),
        lambda: onc.requestDataProduct(dict(HSD, deviceCode="ICLISTENHF9999")),
    ]
    for call in calls:
        try:
            call()
        except requests.HTTPError as error:
            text = str(error)
            assert "Status 400" in text and "API Error 127" in text and "(parameter: deviceCode)" in text, text
            continue
        raise AssertionError("no error raised")


failed = [name for name, error in results if error is not None]
print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
