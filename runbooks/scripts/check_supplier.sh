#!/bin/sh
# Readiness: each SUPPLIER has current escalation contacts and an alternate supplier under contract.
# State file: check_supplier.SUPPLIER, first line 'ok' or e.g. 'fail: alternate contract expired'.
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -ge 1 ] || bcm_usage "SUPPLIER..."
bcm_check_ok_fail check_supplier "escalation contacts current, alternate contracted" "$@"
