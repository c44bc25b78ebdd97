# shellcheck shell=sh
# Shared helpers for the runbook scripts: sourced by them, never run on its own.
#
# Two kinds of script live here:
#   readiness checks (check_*.sh): read-only; print one status line; exit 0 ok, 1 not ready, 2 usage.
#   actions (everything else): print what they would do and exit 0, unless BCM_SCRIPTS_LIVE=1,
#   in which case they hand over to the site's integration hook $BCM_SCRIPTS_HOOKS/<script name>.
# See README.md in this directory.

BCM_SCRIPT_NAME=$(basename "$0" .sh)

bcm_usage() {
  printf 'usage: %s %s\n' "$BCM_SCRIPT_NAME" "$1" >&2
  exit 2
}

# bcm_state CHECK SUBJECT
# Sets BCM_STATE to the first line of $BCM_SCRIPTS_STATE/CHECK.SUBJECT (or $BCM_SCRIPTS_STATE/CHECK)
# and BCM_STATE_FILE to its path. Returns 0 when a file was read, 1 when BCM_SCRIPTS_STATE is unset
# (nothing to read: the caller reports "assuming ok"), 2 when it is set but holds no file for this
# check: a test that sets up state and forgets one check must not pass silently.
bcm_state() {
  BCM_STATE=""
  BCM_STATE_FILE=""
  if [ -z "${BCM_SCRIPTS_STATE:-}" ]; then
    return 1
  fi
  for candidate in "$BCM_SCRIPTS_STATE/$1.$2" "$BCM_SCRIPTS_STATE/$1"; do
    if [ -f "$candidate" ]; then
      BCM_STATE_FILE=$candidate
      IFS= read -r BCM_STATE <"$candidate" || true
      return 0
    fi
  done
  return 2
}

# bcm_read CHECK SUBJECT WHAT: bcm_state, printing the line for the two no-file cases.
# Returns 0 when BCM_STATE holds a value to judge, 10 when the caller should count "ok", 11 "not ready".
bcm_read() {
  rc=0
  bcm_state "$1" "$2" || rc=$?
  case $rc in
    0) return 0 ;;
    1)
      printf '%s %s: ok (%s): no state file: assuming ok, set BCM_SCRIPTS_STATE to test\n' "$1" "$2" "$3"
      return 10
      ;;
    *)
      printf '%s %s: NOT READY: no state file %s.%s (or %s) in %s\n' "$1" "$2" "$1" "$2" "$1" "$BCM_SCRIPTS_STATE"
      return 11
      ;;
  esac
}

# bcm_check_ok_fail CHECK WHAT SUBJECT...
# The common readiness check, one status line per subject: the state file's first line starts with
# "ok" (ready) or anything else, e.g. "fail: battery string 2 degraded" (not ready). Exits 0 when
# every subject is ready, 1 otherwise.
bcm_check_ok_fail() {
  check=$1
  what=$2
  shift 2
  status=0
  for subject in "$@"; do
    rc=0
    bcm_read "$check" "$subject" "$what" || rc=$?
    case $rc in
      10) continue ;;
      11) status=1; continue ;;
    esac
    case "$BCM_STATE" in
      ok*) printf '%s %s: ok (%s): %s\n' "$check" "$subject" "$what" "$BCM_STATE" ;;
      *)
        printf '%s %s: NOT READY (%s): %s\n' "$check" "$subject" "$what" "${BCM_STATE:-empty state file}"
        status=1
        ;;
    esac
  done
  exit $status
}

# bcm_check_minimum CHECK WHAT MINIMUM UNIT SUBJECT...
# A readiness check against a number, one status line per subject: the state file's first line is
# a whole number, ready when it is at least MINIMUM. Exits 0 when every subject is ready, 1 otherwise.
bcm_check_minimum() {
  check=$1
  what=$2
  minimum=$3
  unit=$4
  shift 4
  status=0
  for subject in "$@"; do
    rc=0
    bcm_read "$check" "$subject" "$what >= $minimum $unit" || rc=$?
    case $rc in
      10) continue ;;
      11) status=1; continue ;;
    esac
    case "$BCM_STATE" in
      '' | *[!0-9]*)
        printf '%s %s: NOT READY: %s holds %s, expected a whole number of %s\n' \
          "$check" "$subject" "$BCM_STATE_FILE" "'$BCM_STATE'" "$unit"
        status=1
        ;;
      *)
        if [ "$BCM_STATE" -ge "$minimum" ]; then
          printf '%s %s: ok (%s %s %s >= %s)\n' "$check" "$subject" "$what" "$BCM_STATE" "$unit" "$minimum"
        else
          printf '%s %s: NOT READY (%s %s %s < %s)\n' "$check" "$subject" "$what" "$BCM_STATE" "$unit" "$minimum"
          status=1
        fi
        ;;
    esac
  done
  exit $status
}

# bcm_whole_number NAME VALUE: usage error unless VALUE is a whole number.
bcm_whole_number() {
  case "$2" in
    '' | *[!0-9]*)
      printf '%s: %s must be a whole number, got %s\n' "$BCM_SCRIPT_NAME" "$1" "'$2'" >&2
      exit 2
      ;;
  esac
}

# bcm_act DESCRIPTION ARGS...
# An action: describe it; act only when BCM_SCRIPTS_LIVE=1, through the site's hook.
bcm_act() {
  description=$1
  shift
  if [ "${BCM_SCRIPTS_LIVE:-0}" != "1" ]; then
    printf 'DRY RUN %s: would %s (set BCM_SCRIPTS_LIVE=1 to act)\n' "$BCM_SCRIPT_NAME" "$description"
    exit 0
  fi
  hook="${BCM_SCRIPTS_HOOKS:-}/$BCM_SCRIPT_NAME"
  if [ -z "${BCM_SCRIPTS_HOOKS:-}" ] || [ ! -x "$hook" ]; then
    printf 'LIVE %s: refusing to %s: no executable hook %s (set BCM_SCRIPTS_HOOKS)\n' \
      "$BCM_SCRIPT_NAME" "$description" "$hook" >&2
    exit 3
  fi
  printf 'LIVE %s: %s via %s\n' "$BCM_SCRIPT_NAME" "$description" "$hook"
  exec "$hook" "$@"
}
