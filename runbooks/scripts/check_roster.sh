#!/bin/sh
# Readiness: each ROLE has a named person on call now and for the next 7 days (24x7 cover).
# State file: check_roster.ROLE, first line 'ok' or e.g. 'fail: gap Sat 02:00-08:00'.
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -ge 1 ] || bcm_usage "ROLE..."
bcm_check_ok_fail check_roster "24x7 on-call cover" "$@"
