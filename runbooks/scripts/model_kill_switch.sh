#!/bin/sh
# Action: turn MODEL's kill switch on (fall back to human agents) or off.
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -eq 2 ] || bcm_usage "MODEL on|off"
case "$2" in on | off) ;; *) bcm_usage "MODEL on|off" ;; esac
bcm_act "set the kill switch of $1 $2" "$@"
