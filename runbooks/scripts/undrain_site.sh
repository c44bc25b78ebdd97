#!/bin/sh
# Action: return traffic to SITE after recovery.
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -eq 1 ] || bcm_usage "SITE"
bcm_act "return traffic to $1" "$@"
