#!/bin/sh
# Runs each libFuzzer target for FUZZ_SECONDS (make fuzz), starting from
# its committed seeds in fuzz/corpus/<target>/; what it finds new goes to
# check/build/fuzz/corpus/<target>/, never into the committed corpus.
# Every target runs even when one fails; a failure leaves its input in
# check/build/fuzz/artifacts/ and the run fails at the end.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
build=${FUZZ_BUILD:-check/build/fuzz}
seconds=${FUZZ_SECONDS:-60}
failed=""
mkdir -p "$build/artifacts"
for t in "$@"; do
    work=$build/corpus/$t
    mkdir -p "$work"
    dict=""
    case $t in
        host_*|wildcard_*|ip_*|escape) dict=-dict=fuzz/hosts.dict ;;
    esac
    start=$(date +%s)
    rm -f "$build/artifacts/$t-"*
    # First each committed input once, regressions among them: fork mode
    # below would skip an input that fails while it loads the corpus.
    "$build/fuzz_$t" -artifact_prefix="$build/artifacts/$t-replay-" \
        fuzz/corpus/"$t"/* > "$build/$t.replay.log" 2>&1
    replay=$?
    # Fork mode with -ignore_crashes: one finding (a committed regression
    # input, say) does not stop the target, so it keeps looking for others
    # for the whole time; every finding leaves an artifact.
    "$build/fuzz_$t" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 \
        -ignore_ooms=1 -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -max_len=4096 $dict \
        -artifact_prefix="$build/artifacts/$t-" "$work" "fuzz/corpus/$t" \
        > "$build/$t.log" 2>&1
    rc=$?
    found=$(ls "$build/artifacts/$t-"* 2>/dev/null | wc -l)
    runs=$(sed -n 's/.*#\([0-9][0-9]*\): cov.*/\1/p' "$build/$t.log" | tail -1)
    [ $replay -eq 0 ] || found=$((found + 1))
    if [ $rc -eq 0 ] && [ "$found" -eq 0 ]; then
        echo "fuzz $t: ok, ${runs:-?} runs in $(( $(date +%s) - start ))s"
    else
        failed="$failed $t"
        echo "fuzz $t: FAILED (exit $rc, $found findings) in" \
            "$(( $(date +%s) - start ))s:"
        # Fork mode keeps each job's messages apart: replay one input of
        # each kind to show what it broke.
        [ $replay -eq 0 ] || grep -h '^Running: ' "$build/$t.replay.log" \
            | tail -1 | sed 's/^Running: /    committed input that fails: /'
        for a in $(ls "$build/artifacts/$t-"* 2>/dev/null | head -3); do
            echo "    input: $a"
            "$build/fuzz_$t" "$a" 2>&1 | grep -E \
                'PROPERTY FAILED|ERROR: AddressSanitizer|runtime error' \
                | head -2 | sed 's/^/      /'
        done
    fi
done
if [ -n "$failed" ]; then
    echo "fuzz: FAILED:$failed (inputs in $build/artifacts/, logs in $build/)"
    exit 1
fi
echo "fuzz: no finding in $# targets, ${seconds}s each"
