#!/usr/bin/env bash
# install-test-deps.sh installs what the e2e tests (e2e/) need and is missing:
#   - Debian packages: kcat (librdkafka), python3-kafka, python3-confluent-kafka, and the codec
#     modules kafka-python needs for snappy/lz4/zstd (python3-snappy, python3-lz4,
#     python3-zstandard). The tests run /usr/bin/python3 (Debian's), not a pyenv python.
#     util-linux for prlimit (e2e/handles_test.go starts a broker with a low open-file limit).
#   - kafkajs for e2e/js, from e2e/js/package-lock.json via `npm ci`.
# Idempotent: installs only what is missing, runs `apt-get update` at most once, and prints
# what it installs. Uses sudo only when not root.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi
need_root() { # need_root <what>
	if [ -n "$SUDO" ] && ! command -v sudo >/dev/null 2>&1; then
		echo "install-test-deps: installing $1 needs root or sudo; install it by hand, then rerun" >&2
		exit 1
	fi
}

# Debian package -> a check that it is usable (a command or a module import by /usr/bin/python3).
deb_missing=()
need_deb() { # need_deb <package> <check command...>
	local pkg="$1"
	shift
	if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' && "$@" >/dev/null 2>&1; then
		return 0
	fi
	deb_missing+=("$pkg")
}

need_deb kcat command -v kcat
need_deb python3-kafka /usr/bin/python3 -c 'import kafka'
need_deb python3-confluent-kafka /usr/bin/python3 -c 'import confluent_kafka'
need_deb python3-snappy /usr/bin/python3 -c 'import snappy'
need_deb python3-lz4 /usr/bin/python3 -c 'import lz4.frame'
need_deb python3-zstandard /usr/bin/python3 -c 'import zstandard'
need_deb util-linux command -v prlimit

if [ "${#deb_missing[@]}" -gt 0 ]; then
	echo "install-test-deps: apt-get install ${deb_missing[*]}"
	need_root "${deb_missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -q
	$SUDO apt-get install -y -q --no-install-recommends "${deb_missing[@]}"
else
	echo "install-test-deps: Debian packages present (kcat python3-kafka python3-confluent-kafka python3-snappy python3-lz4 python3-zstandard util-linux)"
fi

# kafkajs: reinstall when node_modules is missing or older than the lockfile.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	echo "install-test-deps: apt-get install nodejs npm"
	need_root "nodejs npm"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -q
	$SUDO apt-get install -y -q --no-install-recommends nodejs npm
fi
js="$root/e2e/js"
stamp="$js/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$js/package-lock.json" -nt "$stamp" ] || [ ! -d "$js/node_modules/kafkajs" ]; then
	echo "install-test-deps: npm ci in e2e/js (kafkajs)"
	(cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
else
	echo "install-test-deps: e2e/js/node_modules up to date (kafkajs)"
fi
bash "$root/scripts/install-minio.sh" # MinIO server for the object-store tests (internal/miniotest)
