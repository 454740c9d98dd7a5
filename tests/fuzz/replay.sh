#!/bin/sh
# replay.sh: make check's driver for the fuzz targets: each tests/fuzz/<name>_replay binary runs
# over tests/fuzz/corpus/<name>/. Build the real fuzzers with clang -fsanitize=fuzzer (see
# docs/fuzzing in tests/fuzz/README).
set -u
status=0
for bin in "$BUILD_DIR"/tests/fuzz/*_replay; do
  name=$(basename "$bin" _replay)
  "$bin" "$SRC_DIR/tests/fuzz/corpus/$name" || status=1
done
exit $status
