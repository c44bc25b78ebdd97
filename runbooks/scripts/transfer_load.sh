#!/bin/sh
# Action: transfer SITE's critical load to generators and shed non-critical load (office, lab).
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -eq 1 ] || bcm_usage "SITE"
bcm_act "transfer $1 critical load to generators and shed non-critical load" "$@"
