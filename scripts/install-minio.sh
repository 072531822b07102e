#!/usr/bin/env bash
# install-minio.sh builds the MinIO server that the object-store tests run against
# (internal/miniotest) with `go install`, from the Go module proxy, into a per-version cache dir:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/strata/minio-<version>/minio
# Override the directory with STRATA_MINIO_DIR. Tests find the binary there, or at
# $STRATA_MINIO_BINARY when that is set.
# Idempotent: does nothing when the binary is already there. A fresh build takes several
# minutes and about 1.5 GB of memory; set GOFLAGS=-p=1 to lower peak memory on small machines.
set -euo pipefail

MINIO_MODULE="github.com/minio/minio"
MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"

cache="${XDG_CACHE_HOME:-$HOME/.cache}"
dir="${STRATA_MINIO_DIR:-$cache/strata/minio-$MINIO_VERSION}"
bin="$dir/minio"

if [ -x "$bin" ]; then
	echo "install-minio: $bin present"
	exit 0
fi

if ! command -v go >/dev/null 2>&1; then
	echo "install-minio: go is not on PATH; install Go first" >&2
	exit 1
fi

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)" # GOBIN must be absolute
echo "install-minio: go install $MINIO_MODULE@$MINIO_VERSION -> $dir (takes several minutes)"
start=$(date +%s)
# Build into a temporary GOBIN and move the binary in place only when it is complete,
# so an interrupted build never leaves a half-written binary that looks installed.
tmp="$(mktemp -d "$dir/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
GOBIN="$tmp" GOFLAGS="${GOFLAGS:-} -trimpath" go install "$MINIO_MODULE@$MINIO_VERSION"
mv "$tmp/minio" "$bin"
echo "install-minio: installed $bin in $(($(date +%s) - start))s"
"$bin" --version | head -n 1 || true
