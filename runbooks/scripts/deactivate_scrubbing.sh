#!/bin/sh
# Action: withdraw the scrubbing diversion for PREFIX at PROVIDER.
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -eq 2 ] || bcm_usage "PREFIX PROVIDER"
bcm_act "withdraw the diversion of $1 from $2" "$@"
