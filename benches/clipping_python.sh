#!/bin/sh
# Make sure the Python tool is installed for the clipping benchmark (benches/clipping.rs).
# Usage: clipping_python.sh VENV_DIR. Creates VENV_DIR with python3 -m venv and installs the
# latest onc-hydrophone-data from PyPI plus numpy, scipy and soundfile, unless already there.
# Exits non-zero (last stderr line says why) when that is impossible, e.g. without network.
set -eu
venv="$1"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import onc_hydrophone_data, numpy, scipy, soundfile' 2>/dev/null; then
    exit 0
fi
command -v python3 >/dev/null 2>&1 || { echo "python3 not found" >&2; exit 1; }
[ -x "$venv/bin/python" ] || python3 -m venv "$venv" >&2 || { echo "python3 -m venv failed" >&2; exit 1; }
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --timeout 30 --retries 2 \
    onc-hydrophone-data numpy scipy soundfile >&2 \
    || { echo "pip install onc-hydrophone-data numpy scipy soundfile failed (no network?)" >&2; exit 1; }
"$venv/bin/python" -c 'import onc_hydrophone_data, numpy, scipy, soundfile' >&2 \
    || { echo "onc_hydrophone_data does not import after installing" >&2; exit 1; }
