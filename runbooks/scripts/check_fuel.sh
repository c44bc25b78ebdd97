#!/bin/sh
# Readiness: hours of generator fuel on site at full load, at least MIN_HOURS, at each SITE.
# State file: check_fuel.SITE, first line the hours of fuel as a whole number.
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -ge 2 ] || bcm_usage "MIN_HOURS SITE..."
bcm_whole_number MIN_HOURS "$1"
minimum=$1
shift
bcm_check_minimum check_fuel "generator fuel" "$minimum" hours "$@"
