#!/bin/sh
# Action: raise IGP metrics on LINK so traffic leaves it for the planned reroute paths.
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -eq 1 ] || bcm_usage "LINK"
bcm_act "cost out $1 and move traffic to the reroute paths" "$@"
