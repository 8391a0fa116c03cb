#!/usr/bin/env bash
# Builds librdkafka's own test-runner from the librdkafka source that the rdkafka-sys
# crate ships (downloaded from crates.io, checksum pinned), without SSL, SASL or curl.
# Idempotent: prints the directory holding `test-runner` (run it with LD_LIBRARY_PATH
# set to that directory's ../src and ../src-cpp).
#   tests/librdkafka/build.sh WORK_DIR
set -euo pipefail
WORK="${1:?usage: build.sh WORK_DIR}"
VERSION="4.10.0+2.12.1"
SHA256="e234cf318915c1059d4921ef7f75616b5219b10b46e9f3a511a15eb4b56a3f77"
SRC="$WORK/librdkafka-$VERSION"
if [ ! -x "$SRC/tests/test-runner" ]; then
  mkdir -p "$WORK"
  CRATE="$WORK/rdkafka-sys-$VERSION.crate"
  if [ ! -f "$CRATE" ] || ! echo "$SHA256  $CRATE" | sha256sum -c --quiet - 2>/dev/null; then
    curl -fsSL -o "$CRATE" "https://static.crates.io/crates/rdkafka-sys/rdkafka-sys-${VERSION/+/%2B}.crate"
    echo "$SHA256  $CRATE" | sha256sum -c --quiet -
  fi
  rm -rf "$SRC" "$WORK/unpacked"
  mkdir -p "$WORK/unpacked"
  tar -xzf "$CRATE" -C "$WORK/unpacked"
  mv "$WORK/unpacked/rdkafka-sys-$VERSION/librdkafka" "$SRC"
  rm -rf "$WORK/unpacked"
  (
    cd "$SRC"
    ./configure --disable-ssl --disable-sasl --disable-curl --disable-zstd --disable-lz4-ext >"$WORK/configure.log" 2>&1
    make -j"$(nproc)" libs >"$WORK/make.log" 2>&1
    make -j"$(nproc)" -C tests build >"$WORK/make-tests.log" 2>&1
  )
fi
echo "$SRC/tests"
