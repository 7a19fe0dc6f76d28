#!/usr/bin/env bash
# Prints the API versions each broker supports; exits non-zero when none answers (a health check).
exec "$(dirname "${BASH_SOURCE[0]}")/kafka-run-class.sh" org.apache.kafka.tools.BrokerApiVersionsCommand "$@"
