#!/usr/bin/env bash
# Prints records to stdout (--bootstrap-server, --topic, --from-beginning, --isolation-level, --property print.headers=true).
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" org.apache.kafka.tools.consumer.ConsoleConsumer "$@"
