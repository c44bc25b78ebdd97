#!/bin/sh
# Readiness: the out-of-band management network answers at each SCOPE (site) and break-glass credentials are sealed.
# State file: check_oob_access.SCOPE, first line 'ok' or e.g. 'fail: console server lon-dc1 down'.
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -ge 1 ] || bcm_usage "SCOPE..."
bcm_check_ok_fail check_oob_access "out-of-band access, break-glass sealed" "$@"
