#!/bin/sh
# Action: announce PREFIX via the scrubbing provider PROVIDER (BGP diversion).
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -eq 2 ] || bcm_usage "PREFIX PROVIDER"
bcm_act "divert $1 through scrubbing provider $2" "$@"
