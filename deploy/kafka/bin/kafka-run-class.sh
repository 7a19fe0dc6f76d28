#!/usr/bin/env bash
# Runs a Kafka Java class with the pinned jars on the classpath: kafka-run-class.sh CLASS [ARGS...].
# The same script serves the Kafka image (/opt/kafka/bin, jars in /opt/kafka/libs) and a checkout of this repo
# (deploy/kafka/bin, jars resolved by `make infra-install` into .local/kafka/libs). Environment, as in the
# Kafka distribution: KAFKA_LIBS (the jars' directory), JAVA_HOME, KAFKA_HEAP_OPTS, KAFKA_JVM_PERFORMANCE_OPTS,
# KAFKA_LOG4J_OPTS, KAFKA_OPTS.
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 CLASS [ARGS...]" >&2
  exit 2
fi

base_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${KAFKA_LIBS:-}" ]; then
  KAFKA_LIBS="$base_dir/libs"
  # In the repo the jars live outside deploy/, where make infra-install resolves them.
  [ -d "$KAFKA_LIBS" ] || KAFKA_LIBS="$base_dir/../../.local/kafka/libs"
fi
if ! compgen -G "$KAFKA_LIBS/*.jar" >/dev/null; then
  echo "$0: no Kafka jars in $KAFKA_LIBS (run make infra-install, or set KAFKA_LIBS)" >&2
  exit 1
fi

java="java"
[ -n "${JAVA_HOME:-}" ] && java="$JAVA_HOME/bin/java"

# Unquoted on purpose below: each *_OPTS variable holds several JVM options, as in the Kafka distribution.
# shellcheck disable=SC2086
exec "$java" \
  ${KAFKA_HEAP_OPTS:--Xmx256M} \
  ${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true} \
  ${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=$base_dir/config/tools-log4j2.properties} \
  ${KAFKA_OPTS:-} \
  -cp "$KAFKA_LIBS/*" "$@"
