#!/bin/sh
# Action: route SERVICE's traffic to SUPPLIER (the alternate during an incident, the primary after it).
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -eq 2 ] || bcm_usage "SERVICE SUPPLIER"
bcm_act "route $1 to supplier $2" "$@"
