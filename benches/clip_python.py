"""The Python tool's clipper on the clipping benchmark's files and events (benches/clipping.rs).

Runs `onc-hydrophone-data`'s own timestamp-request path,
`HydrophoneDownloader._execute_timestamp_request`, once per event, offline: the two methods that
talk to ONC (`download_MAT_or_PNG`, `download_flac_files`) are replaced by no-ops because the
files are already on disk, and `setup_directories` points the tool's spectrogram and audio
folders at the benchmark's data folder (where the generated FLAC and plotRes MAT files are).
Everything else is the package's code: the 5-minute windows, `_collect_files_for_range` (a glob
of the folder), `_load_spectrogram_chunk` (scipy.io.loadmat + column slice) and `np.concatenate`
+ `_write_spectrogram_clip` (np.savez_compressed), or `_load_audio_chunk` (torchaudio.load, else
soundfile.read of the whole file) + `torch.cat` + `_write_audio_clip` (torchaudio.save, else
soundfile.write FLAC, plus a JSON sidecar). Clips are written under a scratch folder.

Timed: only the loop of `_execute_timestamp_request` calls (imports, construction, and the
scratch folder's creation are not). Prints one JSON line: clips, seconds, note.

Each event's request: timestamp = event start, pad_before = 15 s, pad_after = 10 s + 20 s, so
the tool's clip window is the same 45 s window onc-pipe cuts.
"""

import argparse
import json
import os
import shutil
import sys
import time
from datetime import datetime, timezone


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--events", required=True)
    parser.add_argument("--media", choices=["audio", "spectrogram"], required=True)
    parser.add_argument("--count", type=int, default=100)
    args = parser.parse_args()

    import logging

    from onc_hydrophone_data.data.downloader import audio_backends
    from onc_hydrophone_data.data.downloader.models import TimestampRequest
    from onc_hydrophone_data.data.hydrophone_downloader import HydrophoneDownloader

    logging.disable(logging.INFO)  # the tool logs every request at INFO
    events = json.load(open(args.events))["events"][: args.count]
    scratch = os.path.join(args.data, "python-out")
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    data = os.path.join(os.path.abspath(args.data), "")

    dl = HydrophoneDownloader("offline-benchmark", scratch)

    def setup_directories(*_args, **_kwargs):
        dl.spectrogram_path = data
        dl.input_path = data
        dl.audio_path = data
        dl.flac_path = data

    def no_download(*_args, **_kwargs):
        return None

    dl.setup_directories = setup_directories
    dl.download_MAT_or_PNG = no_download
    dl.download_flac_files = no_download

    audio = args.media == "audio"
    requests = []
    for e in events:
        start = datetime.fromtimestamp(e["event_start_ns"] / 1e9, tz=timezone.utc)
        pad_before = (e["event_start_ns"] - e["start_ns"]) / 1e9
        pad_after = (e["end_ns"] - e["event_start_ns"]) / 1e9
        requests.append(
            TimestampRequest(
                device_code="ICLISTENHF6324",
                timestamp=start,
                pad_before=pad_before,
                pad_after=pad_after,
                want_spectrogram=not audio,
                want_audio=audio,
                clip_outputs=True,
                tag="bench",
                spectrogram_format="mat",
                audio_extension="flac",
                description="bench event",
                output_name=f"event_{e['index']:04d}",
            )
        )

    clips = 0
    started = time.perf_counter()
    for req in requests:
        summary = dl._execute_timestamp_request(req)
        part = summary["audio" if audio else "spectrogram"] or {}
        if part.get("clip_path"):
            clips += 1
    seconds = time.perf_counter() - started

    if audio:
        reader = "torchaudio.load" if audio_backends.torchaudio is not None else "soundfile.read"
        writer = "torchaudio.save" if audio_backends.torchaudio is not None else "soundfile.write"
        note = (
            f"{len(requests)} x _execute_timestamp_request (audio): glob, {reader} of each whole "
            f"source file, slice, torch.cat, {writer} FLAC + JSON sidecar"
        )
    else:
        note = (
            f"{len(requests)} x _execute_timestamp_request (spectrogram): glob, scipy.io.loadmat "
            "of each source MAT, column slice, np.concatenate, np.savez_compressed"
        )
    if clips != len(requests):
        note += f"; only {clips} of {len(requests)} requests produced a clip"
    shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps({"clips": clips, "seconds": seconds, "note": note}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
