#!/bin/sh
# Readiness: standby generators at each SITE in auto, last load test passed.
# State file: check_generators.SITE, first line 'ok' or e.g. 'fail: gen B in manual'.
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -ge 1 ] || bcm_usage "SITE..."
bcm_check_ok_fail check_generators "generators in auto, load test passed" "$@"
