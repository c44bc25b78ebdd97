#!/bin/sh
# Readiness: UPS at each SITE on line, batteries healthy, bypass not engaged.
# State file: check_ups.SITE, first line 'ok' or e.g. 'fail: string 2 at 41% capacity'.
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -ge 1 ] || bcm_usage "SITE..."
bcm_check_ok_fail check_ups "UPS on line, batteries healthy" "$@"
