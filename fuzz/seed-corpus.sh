#!/bin/sh
# Generate or copy the fuzz targets' seed corpora into fuzz/corpus/<target>. Run from the
# repository root. The MAT and FLAC seeds (small simulator files in several layouts) come from
# ignored unit tests; the manifest and request-file seeds are the repository's examples; the ONC
# answers' seeds are committed as they are (fuzz/seeds/onc_answers).
set -eu
root="$(pwd)"
corpus="$root/fuzz/corpus"
ONC_PIPE_FUZZ_SEEDS="$corpus/mat_reader" cargo test --lib clip::mat::tests::write_fuzz_seeds -- --ignored --exact
ONC_PIPE_FUZZ_SEEDS="$corpus/flac_clip" cargo test --lib clip::audio::tests::write_fuzz_seeds -- --ignored --exact
mkdir -p "$corpus/manifest_text" "$corpus/request_json" "$corpus/request_csv" "$corpus/onc_answers"
cp manifests/*.toml "$corpus/manifest_text/"
cp manifests/requests/*.json "$corpus/request_json/"
cp manifests/requests/*.csv manifests/requests/*.txt "$corpus/request_csv/"
cp fuzz/seeds/onc_answers/* "$corpus/onc_answers/"
du -sh "$corpus"/*
