#!/bin/sh
# Action: isolate SEGMENT through the out-of-band network (ACL deny-all except the OOB and forensics hosts).
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -eq 1 ] || bcm_usage "SEGMENT"
bcm_act "isolate $1 via out-of-band management, keeping forensic access" "$@"
