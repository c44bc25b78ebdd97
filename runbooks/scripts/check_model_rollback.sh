#!/bin/sh
# Readiness: each MODEL has a previous approved version in the registry and a working kill switch.
# State file: check_model_rollback.MODEL, first line 'ok' or e.g. 'fail: no approved previous version'.
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -ge 1 ] || bcm_usage "MODEL..."
bcm_check_ok_fail check_model_rollback "rollback target approved, kill switch tested" "$@"
