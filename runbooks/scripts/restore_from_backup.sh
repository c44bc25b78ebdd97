#!/bin/sh
# Action: restore SYSTEM from the immutable backup vault at RESTORE_POINT into the clean environment.
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -eq 2 ] || bcm_usage "SYSTEM RESTORE_POINT"
bcm_act "restore $1 from the immutable vault at $2 into the clean environment" "$@"
