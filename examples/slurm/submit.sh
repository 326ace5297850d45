#!/bin/bash
# Submits the fetch phase as a job array, then the clip phase to start only once every fetch
# task has succeeded (afterok). Run from the folder holding the manifest:
#   ONC_TOKEN=... MANIFEST=m.toml ONC_PIPE_CACHE=s3://bucket/prefix ./submit.sh
# SBATCH (the sbatch command) is overridable, for tests.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SBATCH="${SBATCH:-sbatch}"
# --parsable prints "jobid" or "jobid;cluster".
FETCH_JOB="$("$SBATCH" --parsable "$here/fetch.sbatch")"
FETCH_JOB="${FETCH_JOB%%;*}"
CLIP_JOB="$("$SBATCH" --parsable --dependency="afterok:$FETCH_JOB" "$here/clip.sbatch")"
CLIP_JOB="${CLIP_JOB%%;*}"
echo "fetch phase: job $FETCH_JOB; clip phase: job $CLIP_JOB (after it succeeds)"
