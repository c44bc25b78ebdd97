#!/bin/sh
# Action: suspend ACCOUNT's sessions, tokens and badge access, preserving the account for evidence.
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -eq 1 ] || bcm_usage "ACCOUNT"
bcm_act "suspend sessions, tokens and badge of $1 without deleting anything" "$@"
