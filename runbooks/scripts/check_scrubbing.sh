#!/bin/sh
# Readiness: each DDoS scrubbing PROVIDER has its BGP sessions and GRE tunnels up.
# State file: check_scrubbing.PROVIDER, first line 'ok' or e.g. 'fail: tunnel 2 down'.
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -ge 1 ] || bcm_usage "PROVIDER..."
bcm_check_ok_fail check_scrubbing "scrubbing sessions and tunnels up" "$@"
