#!/usr/bin/env bash
# Installs the real Kafka clients the compatibility tests drive: kcat (Debian's, which
# links librdkafka 2.0.2) and a Python virtual environment with confluent-kafka (a recent
# librdkafka) and kafka-python. Idempotent; prints the venv's python on success.
set -euo pipefail
VENV="${1:?usage: setup.sh VENV_DIR}"
if ! command -v kcat >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get install -y -qq kcat >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq kcat >/dev/null; })
  else
    echo "kcat is missing and this user cannot apt-get install it" >&2
    exit 1
  fi
fi
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import confluent_kafka, kafka" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$(dirname "$0")/requirements.txt"
fi
echo "$VENV/bin/python"
