#!/usr/bin/env bash
# make check-deb: the Debian package, end to end, in the system httpd.
#
#   1. builds it (make deb) and installs it (dpkg -i): the module, its .load
#      and .conf are where Debian's httpd looks, and nothing is enabled yet;
#   2. a2enmod misdirect; apache2ctl configtest and apache2ctl -M on the
#      stock /etc/apache2;
#   3. starts httpd on a copy of /etc/apache2 whose only Listen is a free
#      loopback port (the stock one listens on port 80), and sends it an
#      absolute-form "GET https://..." on that plain port: the module
#      answers 421 (scheme-mismatch) and logs MISDIRECT001 in error_log,
#      while a plain "GET /" is served; then stops that httpd;
#   4. a2dismod misdirect and dpkg --purge, then checks that no file the
#      package installed (dpkg -L), no mods-enabled link and no a2enmod
#      state is left.
#
# It changes the system (a package, /etc/apache2/mods-enabled), so it
# refuses to run where the package, or files of `make install`, are
# already there, and on failure still stops its httpd and purges what it
# installed.  Exits non-zero with a message naming the failed step.
set -euo pipefail
cd "$(dirname "$0")/.."

PKG=libapache2-mod-misdirect
MAKE=${MAKE:-make}
start=$(date +%s)
step="start"
work=""
httpd_args=()
installed=0
enabled=0

failed=0
fail() { echo "check-deb: FAILED at $step: $*" >&2; failed=1; exit 1; }
say() { echo "check-deb: $*"; }

pkg_status() {
    dpkg-query -W -f='${db:Status-Abbrev}' "$PKG" 2>/dev/null || true
}

httpd_pid() {
    [ -n "$work" ] && [ -s "$work/run/apache2.pid" ] && cat "$work/run/apache2.pid"
}

stop_httpd() {
    local pid
    pid=$(httpd_pid) || return 0
    [ -n "$pid" ] || return 0
    apache2 "${httpd_args[@]}" -k stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    return 1
}

cleanup() {
    local rc=$?
    if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then
        echo "check-deb: FAILED at $step (exit $rc)" >&2
    fi
    stop_httpd || echo "check-deb: httpd $(httpd_pid) had to be killed" >&2
    if [ "$enabled" = 1 ]; then
        a2dismod -q misdirect >/dev/null 2>&1 || true
    fi
    if [ "$installed" = 1 ] && [ -n "$(pkg_status)" ] \
            && [ "$(pkg_status)" != "un " ]; then
        echo "check-deb: purging $PKG after the failure" >&2
        DEBIAN_FRONTEND=noninteractive dpkg --purge "$PKG" >/dev/null 2>&1 || true
    fi
    if [ -n "$work" ]; then
        if [ "$rc" = 0 ]; then rm -rf "$work"
        else echo "check-deb: httpd's configuration and logs: $work" >&2; fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || { echo "check-deb: must run as root (dpkg -i, a2enmod)" >&2; exit 1; }

# --- 0. a system where the check can undo all it does -----------------------
step="preconditions"
case "$(pkg_status)" in
    ""|"un "|"pn ") ;;
    *) fail "$PKG is already installed ($(pkg_status)); the check would purge it: dpkg --purge $PKG first" ;;
esac
for f in /usr/lib/apache2/modules/mod_misdirect.so \
         /etc/apache2/mods-available/misdirect.load \
         /etc/apache2/mods-available/misdirect.conf \
         /etc/apache2/mods-enabled/misdirect.load \
         /etc/apache2/mods-enabled/misdirect.conf; do
    if [ -e "$f" ] || [ -L "$f" ]; then
        fail "$f exists (from 'make install'?); the package would take it over and purge it: remove it first"
    fi
done
for t in apache2 apache2ctl a2enmod a2dismod a2query perl; do
    command -v "$t" >/dev/null || fail "$t is missing"
done

# --- 1. build and install ---------------------------------------------------
step="make deb"
say "building the package (make deb)"
"$MAKE" --no-print-directory deb >/dev/null || fail "make deb failed (run it alone to see why)"
deb=${DEB:-$(ls -t dist/${PKG}_*.deb | head -n 1)}
[ -f "$deb" ] || fail "$deb was not built"

step="dpkg -i"
say "installing $deb"
installed=1
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >"${TMPDIR:-/tmp}/check-deb-dpkg.log" 2>&1 \
    || { cat "${TMPDIR:-/tmp}/check-deb-dpkg.log" >&2; fail "dpkg -i $deb"; }
rm -f "${TMPDIR:-/tmp}/check-deb-dpkg.log"
[ "$(pkg_status)" = "ii " ] || fail "$PKG is not installed after dpkg -i ($(pkg_status))"
mapfile -t files < <(dpkg -L "$PKG")
for f in /usr/lib/apache2/modules/mod_misdirect.so \
         /etc/apache2/mods-available/misdirect.load \
         /etc/apache2/mods-available/misdirect.conf; do
    printf '%s\n' "${files[@]}" | grep -qx "$f" || fail "dpkg -L $PKG does not list $f"
    [ -f "$f" ] || fail "$f is not installed"
done
grep -q '^LoadModule misdirect_module /usr/lib/apache2/modules/mod_misdirect.so$' \
    /etc/apache2/mods-available/misdirect.load || fail "misdirect.load does not load the installed module"
if [ -e /etc/apache2/mods-enabled/misdirect.load ] || a2query -q -m misdirect; then
    fail "the package enabled the module itself; it should wait for a2enmod"
fi
say "installed $(printf '%s\n' "${files[@]}" | wc -l) paths, module not enabled"

# --- 2. enable, configtest --------------------------------------------------
step="a2enmod"
enabled=1
a2enmod misdirect >/dev/null || fail "a2enmod misdirect"
[ -L /etc/apache2/mods-enabled/misdirect.load ] || fail "no mods-enabled/misdirect.load link"
[ -L /etc/apache2/mods-enabled/misdirect.conf ] || fail "no mods-enabled/misdirect.conf link"
a2query -q -m misdirect || fail "a2query does not report misdirect enabled"

step="apache2ctl configtest"
out=$(apache2ctl configtest 2>&1) || { echo "$out" >&2; fail "configtest"; }
grep -q 'Syntax OK' <<<"$out" || { echo "$out" >&2; fail "configtest did not say Syntax OK"; }

step="apache2ctl -M"
apache2ctl -M 2>/dev/null | grep -q 'misdirect_module (shared)' \
    || fail "apache2ctl -M does not list misdirect_module"
say "a2enmod, configtest and apache2ctl -M: misdirect_module (shared)"

# --- 3. serve requests: the stock configuration on a loopback port ----------
step="httpd on a copy of /etc/apache2"
work=$(mktemp -d /tmp/check-deb.XXXXXX)
chmod 755 "$work"
cp -a /etc/apache2 "$work/conf"
mkdir -p "$work/run" "$work/lock" "$work/log"
port=$(perl -MIO::Socket::INET -e \
    'my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0,
         Proto => "tcp", Listen => 1) or die "$!\n"; print $s->sockport')
# The only Listen: the free loopback port; the stock vhosts move to it.
printf 'Listen 127.0.0.1:%s\n' "$port" >"$work/conf/ports.conf"
sed -i "s/<VirtualHost \*:80>/<VirtualHost *:$port>/" "$work"/conf/sites-available/*.conf
grep -qs 'mod_misdirect.so' "$work/conf/mods-enabled/misdirect.load" \
    || fail "the copy of /etc/apache2 does not enable the module"

# envvars as apache2ctl reads it, with its run, lock and log dirs moved.
# APACHE_CONFDIR only while envvars reads it: exported, it would point
# a2dismod below at the copy.
APACHE_CONFDIR="$work/conf"
set +u
# shellcheck disable=SC1091
. "$work/conf/envvars"
set -u
unset APACHE_CONFDIR
export APACHE_PID_FILE="$work/run/apache2.pid" APACHE_RUN_DIR="$work/run" \
       APACHE_LOCK_DIR="$work/lock" APACHE_LOG_DIR="$work/log"
httpd_args=(-d "$work/conf" -f "$work/conf/apache2.conf")
apache2 "${httpd_args[@]}" -t >"$work/configtest.log" 2>&1 \
    || { cat "$work/configtest.log" >&2; fail "configtest of the copy"; }
apache2 "${httpd_args[@]}" -k start >"$work/start.log" 2>&1 \
    || { cat "$work/start.log" "$work/log/error.log" 2>/dev/null >&2; fail "httpd -k start"; }
for _ in $(seq 1 100); do
    [ -s "$work/run/apache2.pid" ] && break
    sleep 0.1
done
pid=$(httpd_pid) || fail "httpd wrote no pid file"
say "httpd $pid on 127.0.0.1:$port ($work/conf)"

# request REQUEST-TARGET: prints the response's status line.
request() {
    perl -MIO::Socket::INET -e '
        my ($port, $target) = @ARGV;
        my $s;
        for (1 .. 50) {
            $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1",
                PeerPort => $port, Timeout => 5) and last;
            select undef, undef, undef, 0.1;
        }
        $s or die "connect 127.0.0.1:$port: $!\n";
        $s->print("GET $target HTTP/1.1\r\nHost: localhost\r\n"
            . "Connection: close\r\n\r\n");
        local $SIG{ALRM} = sub { die "no answer in 10 s\n" };
        alarm 10;
        my $line = <$s>;
        defined $line or die "connection closed without an answer\n";
        $line =~ s/\r?\n\z//;
        print "$line\n";
    ' "$port" "$1"
}

step="GET / (served)"
status=$(request /) || fail "no answer"
[[ "$status" =~ ^HTTP/1\.1\ (200|403|404)\  ]] || fail "expected 200 (or 403/404), got: $status"
say "GET / -> $status"

step="GET https://localhost/ on plain HTTP (421)"
status=$(request https://localhost/) || fail "no answer"
[[ "$status" =~ ^HTTP/1\.1\ 421\  ]] || fail "expected 421 Misdirected Request, got: $status"
say "GET https://localhost/ -> $status"

step="error_log"
line=""
for _ in $(seq 1 50); do
    line=$(grep -m 1 'MISDIRECT001' "$work/log/error.log" 2>/dev/null) && break
    sleep 0.1
done
[ -n "$line" ] || { tail -n 20 "$work/log/error.log" >&2 || true; fail "no MISDIRECT001 line in error_log"; }
grep -q '\[misdirect:error\]' <<<"$line" || fail "MISDIRECT001 line is not tagged [misdirect:error]: $line"
grep -q 'scheme-mismatch' <<<"$line" || fail "MISDIRECT001 line does not name scheme-mismatch: $line"
say "error_log: ${line:0:160}..."

step="stopping httpd"
stop_httpd || fail "httpd $pid did not stop within 10 s (killed)"
if perl -MIO::Socket::INET -e 'exit(IO::Socket::INET->new(PeerAddr => "127.0.0.1",
        PeerPort => $ARGV[0], Timeout => 2) ? 0 : 1)' "$port"; then
    fail "something still answers on 127.0.0.1:$port"
fi
if pgrep -f -- "-d $work/conf " >/dev/null; then
    fail "an httpd of $work/conf is still running"
fi
say "httpd stopped"

# --- 4. disable, purge, nothing left ----------------------------------------
step="a2dismod"
a2dismod misdirect >/dev/null || fail "a2dismod misdirect"
enabled=0
for f in /etc/apache2/mods-enabled/misdirect.load /etc/apache2/mods-enabled/misdirect.conf; do
    if [ -e "$f" ] || [ -L "$f" ]; then fail "$f is still there after a2dismod"; fi
done

step="dpkg --purge"
DEBIAN_FRONTEND=noninteractive dpkg --purge "$PKG" >/dev/null || fail "dpkg --purge $PKG"
installed=0
case "$(pkg_status)" in
    ""|"un "|"pn ") ;;
    *) fail "$PKG is still known to dpkg as '$(pkg_status)'" ;;
esac

step="nothing left"
left=()
for f in "${files[@]}"; do
    [ "$f" = "/." ] && continue
    [ -e "$f" ] || [ -L "$f" ] || continue
    # A directory may stay when another package owns it too.
    if [ -d "$f" ] && [ ! -L "$f" ] && dpkg -S "$f" >/dev/null 2>&1; then
        continue
    fi
    left+=("$f")
done
[ "${#left[@]}" = 0 ] || fail "left after purge: ${left[*]}"
stray=$(find /etc/apache2 /var/lib/apache2 -name 'misdirect*' 2>/dev/null || true)
[ -z "$stray" ] || fail "left after purge: $stray"
say "purged: none of its ${#files[@]} paths, links or a2enmod state is left"

say "passed in $(( $(date +%s) - start ))s"
