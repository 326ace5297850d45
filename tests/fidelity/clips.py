"""CI's Python round trip for clips: numpy loads every NPZ, scipy every MAT clip, soundfile every
FLAC/WAV, and what they read agrees with the sidecars and across formats.

Usage: clips.py DATA_DIR   (the output tree of `onc-pipe run tests/fidelity/clips.toml`)
Exit status 0 when every check passes; each check prints one line.
"""

import json
import pathlib
import sys

import numpy as np
import scipy.io
import soundfile

failures = 0


def check(name, condition, detail=""):
    global failures
    print(("ok    " if condition else "FAIL  ") + name + ("" if condition else f": {detail}"))
    if not condition:
        failures += 1


def main():
    root = pathlib.Path(sys.argv[1])
    spectrograms = sorted(root.glob("*/*/clips/spectrograms/*.npz"))
    audio = sorted(root.glob("*/*/clips/audio/*.flac")) + sorted(root.glob("*/*/clips/audio/*.wav"))
    check("clips exist", len(spectrograms) >= 2 and len(audio) >= 4, f"{spectrograms} {audio}")

    for npz_path in spectrograms:
        side = json.loads(npz_path.with_suffix(".json").read_text())
        npz = np.load(npz_path)
        keys = {"spectrogram", "frequency", "time", "seconds_per_column", "clip_start", "clip_end",
                "device", "description"}
        check(f"{npz_path.name}: numpy loads the Python tool's keys", keys <= set(npz.files), npz.files)
        spec = npz["spectrogram"]
        check(f"{npz_path.name}: spectrogram is frequency x time",
              spec.shape == (len(npz["frequency"]), len(npz["time"])), spec.shape)
        check(f"{npz_path.name}: columns as in the sidecar", spec.shape[1] == side["length"],
              (spec.shape, side["length"]))
        check(f"{npz_path.name}: clip window as in the sidecar",
              str(npz["clip_start"]) == side["padded_window"]["start"]
              and str(npz["clip_end"]) == side["padded_window"]["end"],
              (str(npz["clip_start"]), side["padded_window"]))
        times = npz["time"]
        start = np.datetime64(side["padded_window"]["start"].rstrip("Z")).astype("datetime64[ms]").astype(float) / 1e3
        end = np.datetime64(side["padded_window"]["end"].rstrip("Z")).astype("datetime64[ms]").astype(float) / 1e3
        check(f"{npz_path.name}: column times increase inside the window",
              bool(np.all(np.diff(times) > 0)) and times[0] >= start - 1e-3 and times[-1] < end,
              (times[0], times[-1], start, end))

        mat = scipy.io.loadmat(npz_path.with_suffix(".mat"))
        check(f"{npz_path.name}: scipy loads the MAT clip with SpectData and Meta",
              "SpectData" in mat and "Meta" in mat, list(mat))
        spect = mat["SpectData"][0, 0]
        psd = np.asarray(spect["PSD"], dtype=float)
        check(f"{npz_path.name}: MAT PSD equals the NPZ spectrogram",
              psd.shape == spec.shape and np.array_equal(psd, spec, equal_nan=True), psd.shape)
        datenums = np.asarray(spect["time"], dtype=float).ravel()
        unix = (datenums - 719529.0) * 86400.0
        check(f"{npz_path.name}: MAT time (datenum) equals the NPZ time",
              np.allclose(unix, times, atol=1e-3), (unix[:2], times[:2]))

    for path in audio:
        side = json.loads(path.with_suffix(".json").read_text())
        data, rate = soundfile.read(path, dtype="int32")
        info = soundfile.info(path)
        check(f"{path.name}: soundfile reads it at the sidecar's rate and 24 bits",
              rate == side["sample_rate"] and info.subtype == "PCM_24", (rate, info.subtype))
        check(f"{path.name}: length as in the sidecar", len(data) == side["length"],
              (len(data), side["length"]))

    # The same window cut to FLAC and to WAV holds the same samples.
    for flac in sorted(root.glob("*/*/clips/audio/*.flac")):
        wav = flac.with_name(flac.stem + "_wav.wav")
        if wav.exists():
            a, _ = soundfile.read(flac, dtype="int32")
            b, _ = soundfile.read(wav, dtype="int32")
            check(f"{flac.name} and {wav.name} hold the same samples", np.array_equal(a, b))

    print(f"{'all' if failures == 0 else failures} {'passed' if failures == 0 else 'failed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
