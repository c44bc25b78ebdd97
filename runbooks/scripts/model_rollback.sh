#!/bin/sh
# Action: roll MODEL back to the approved VERSION in the model registry.
set -eu
. "$(dirname "$0")/_lib.sh"
[ $# -eq 2 ] || bcm_usage "MODEL VERSION"
bcm_act "roll $1 back to approved version $2" "$@"
