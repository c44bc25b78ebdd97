#!/bin/sh
# Action: scale the remote-access pool to SEATS concurrent seats (burst licences, extra VDI hosts).
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -eq 1 ] || bcm_usage "SEATS"
bcm_act "scale remote access to $1 concurrent seats" "$@"
