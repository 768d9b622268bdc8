#!/bin/sh
# Runs each libFuzzer target for FUZZ_SECONDS (make fuzz), starting from
# its committed seeds in fuzz/corpus/<target>/; what it finds new goes to
# check/build/fuzz/corpus/<target>/, never into the committed corpus.
# Every target runs even when one fails; a failure leaves its input in
# check/build/fuzz/artifacts/ and the run fails at the end.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
build=check/build/fuzz
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
    "$build/fuzz_$t" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 $dict \
        -artifact_prefix="$build/artifacts/$t-" "$work" "fuzz/corpus/$t" \
        > "$build/$t.log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/$t.log")
    if [ $rc -eq 0 ]; then
        echo "fuzz $t: ok, ${runs:-?} runs in $(( $(date +%s) - start ))s"
    else
        failed="$failed $t"
        echo "fuzz $t: FAILED (exit $rc) after $(( $(date +%s) - start ))s:"
        grep -E 'PROPERTY FAILED|ERROR:|runtime error|^SUMMARY|Test unit written|^Base64' \
            "$build/$t.log" | head -8 | sed 's/^/    /'
    fi
done
if [ -n "$failed" ]; then
    echo "fuzz: FAILED:$failed (inputs in $build/artifacts/, logs in $build/)"
    exit 1
fi
echo "fuzz: no finding in $# targets, ${seconds}s each"
