#!/bin/sh
# Readiness: concurrent remote-access seats in each POOL, at least MIN_SEATS (the critical-staff count).
# State file: check_vpn_capacity.POOL, first line the licensed and load-tested seat count.
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -ge 2 ] || bcm_usage "MIN_SEATS POOL..."
bcm_whole_number MIN_SEATS "$1"
minimum=$1
shift
bcm_check_minimum check_vpn_capacity "remote-access seats" "$minimum" seats "$@"
