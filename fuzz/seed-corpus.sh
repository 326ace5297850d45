#!/bin/sh
# Generate the MAT reader's seed corpus (small simulator files in several layouts, ~100 KB) into
# fuzz/corpus/mat_reader, from a unit test of src/clip/mat. Run from the repository root.
set -eu
dir="$(pwd)/fuzz/corpus/mat_reader"
ONC_PIPE_FUZZ_SEEDS="$dir" cargo test --lib clip::mat::tests::write_fuzz_seeds -- --ignored --exact
ls -l "$dir"
