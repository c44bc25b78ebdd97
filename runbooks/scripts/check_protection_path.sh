#!/bin/sh
# Readiness: the protection path for each LINK is up and route-diverse from the working path.
# State file: check_protection_path.LINK, first line 'ok' or e.g. 'fail: shares duct at Reading'.
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -ge 1 ] || bcm_usage "LINK..."
bcm_check_ok_fail check_protection_path "protection path up and diverse" "$@"
