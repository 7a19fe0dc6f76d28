#!/usr/bin/env bash
# Publishes lines from stdin as records (--bootstrap-server, --topic, --property parse.key/parse.headers=true).
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" org.apache.kafka.tools.ConsoleProducer "$@"
