#!/bin/sh
# Action: return LINK to service (normal IGP metrics) after the repair has soaked.
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -eq 1 ] || bcm_usage "LINK"
bcm_act "cost in $1 and return it to service" "$@"
