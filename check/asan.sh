#!/bin/sh
# The whole t/ suite against httpd with mod_misdirect built with
# AddressSanitizer and UndefinedBehaviorSanitizer (make check-asan).
#
# httpd itself is not instrumented: the ASan runtime is preloaded into
# apache2 alone (MISDIRECT_HTTPD_ENV, see t/lib/MisdirectTest.pm), every
# process of every test server writes its reports under $logs, and the run
# fails if any report concerns the module (check/sanreport.pl).
#
# Leak checking is off by default: at exit it only finds what httpd and
# OpenSSL never free (mod_ssl's contexts, APR allocators; about 200
# reports per test file, none in the module's frames), the module
# allocates from APR pools whose blocks LSan cannot attribute, and it
# makes every server stop about ten times slower.  Per-request growth is
# what matters and check/load.pl measures it.  ASAN_LEAKS=1 turns it on,
# and then a leak with a frame of the module fails the run too.
set -u
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
so=${ASAN_SO:-$repo/check/build/asan/mod_misdirect.so}
logs=$repo/check/build/asan/logs
clang=${CLANG:-clang}
rt=$($clang -print-file-name=libclang_rt.asan-x86_64.so)
[ -f "$rt" ] || { echo "no ASan runtime ($rt): apt-get install libclang-rt-14-dev" >&2; exit 2; }
[ -f "$so" ] || { echo "no $so: make check-asan builds it" >&2; exit 2; }

rm -rf "$logs"
mkdir -p "$logs"
chmod 1777 "$logs"      # the children write as User www-data
# In a checkout www-data cannot enter (a clone under /root), reports
# would be lost without a trace and the run would pass: use /tmp then.
if ! runuser -u www-data -- sh -c ": > '$logs/.probe'" 2>/dev/null; then
    logs=$(mktemp -d /tmp/mod_misdirect-asan.XXXXXX) || exit 2
    chmod 1777 "$logs"
    echo "check-asan: reports go to $logs (www-data cannot write under $repo)"
fi
rm -f "$logs/.probe"

leaks=${ASAN_LEAKS:-0}
# exitcode=0: a leak report at exit must not turn "apache2 -k start"
# into a failure; real errors abort the process and leave a report.
opts="log_path=$logs/report:detect_leaks=$leaks:exitcode=0"
opts="$opts:handle_abort=1:detect_stack_use_after_return=1"
[ "$leaks" = 1 ] && opts="$opts:fast_unwind_on_malloc=0"
# A UBSan report names its source line anyway; its stack, symbolized
# while the request waits, can take seconds and time a test out, which
# would hide what else the run finds: UBSAN_STACKS=1 asks for stacks.
ubsan="log_path=$logs/report:report_error_type=1"
ubsan="$ubsan:print_stacktrace=${UBSAN_STACKS:-0}"
MISDIRECT_SO=$so
MISDIRECT_HTTPD_ENV="LD_PRELOAD=$rt ASAN_OPTIONS=$opts UBSAN_OPTIONS=$ubsan"
export MISDIRECT_SO MISDIRECT_HTTPD_ENV

start=$(date +%s)
${PROVE:-prove} -I t/lib ${ASAN_TESTS:-t/}
suite=$?
echo "check-asan: t/ suite exit $suite in $(( $(date +%s) - start ))s"
perl check/sanreport.pl "$logs"
reports=$?
[ $suite -eq 0 ] && [ $reports -eq 0 ]
