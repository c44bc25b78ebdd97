#!/bin/sh
# Action: drain customer and voice traffic away from SITE to its pair site.
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -eq 1 ] || bcm_usage "SITE"
bcm_act "drain traffic from $1 to its pair site" "$@"
