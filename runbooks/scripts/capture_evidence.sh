#!/bin/sh
# Action: image disks and memory of TARGET into the evidence store under CASE, with SHA-256 hashes.
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -eq 2 ] || bcm_usage "TARGET CASE"
bcm_act "image $1 (disk and memory) into evidence case $2 with SHA-256 hashes" "$@"
