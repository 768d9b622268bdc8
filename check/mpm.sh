#!/bin/sh
# The whole t/ suite once per MPM (make check-mpm).  MISDIRECT_MPM sets
# the harness's default MPM; tests that name an MPM themselves keep it.
# Every MPM runs even when one fails; the summary says which failed.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
failed=""
for mpm in ${MPMS:-event worker prefork}; do
    start=$(date +%s)
    echo "=== check-mpm: $mpm"
    MISDIRECT_MPM=$mpm ${PROVE:-prove} -I t/lib t/
    rc=$?
    echo "=== check-mpm: $mpm: exit $rc in $(( $(date +%s) - start ))s"
    [ $rc -eq 0 ] || failed="$failed $mpm"
done
if [ -n "$failed" ]; then
    echo "check-mpm: FAILED under:$failed"
    exit 1
fi
echo "check-mpm: the t/ suite passes under ${MPMS:-event worker prefork}"
