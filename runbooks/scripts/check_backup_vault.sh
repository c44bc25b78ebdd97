#!/bin/sh
# Readiness: each backup VAULT has object lock (WORM) on and a restore test within 90 days.
# State file: check_backup_vault.VAULT, first line 'ok' or e.g. 'fail: object lock off on bucket x'.
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -ge 1 ] || bcm_usage "VAULT..."
bcm_check_ok_fail check_backup_vault "immutable, restore tested" "$@"
