#!/usr/bin/env bash
# Starts a broker (KRaft): kafka-server-start.sh server.properties [--override name=value ...].
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 server.properties [--override name=value ...]" >&2
  exit 2
fi
base_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx1G -Xms1G}"
export KAFKA_LOG4J_OPTS="${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=$base_dir/config/log4j2.properties}"
exec "$base_dir/bin/kafka-run-class.sh" kafka.Kafka "$@"
