#!/bin/sh
# replay.sh: make check's driver for the fuzz targets: each tests/fuzz/<name>_replay binary runs
# over tests/fuzz/corpus/<name>/. `make fuzz` builds and runs the real fuzzers (README.md).
set -u
status=0
for bin in "$BUILD_DIR"/tests/fuzz/*_replay; do
  name=$(basename "$bin" _replay)
  "$bin" "$SRC_DIR/tests/fuzz/corpus/$name" || status=1
done
exit $status
