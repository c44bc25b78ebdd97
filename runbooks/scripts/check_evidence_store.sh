#!/bin/sh
# Readiness: each evidence store CASE_STORE is write-once and hashing works.
# State file: check_evidence_store.CASE_STORE, first line 'ok' or e.g. 'fail: retention lock off'.
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -ge 1 ] || bcm_usage "CASE_STORE..."
bcm_check_ok_fail check_evidence_store "write-once evidence store" "$@"
