#!/usr/bin/env bash
# make check-deb: the Debian package, end to end, without ever enabling it
# in the system httpd.
#
#   1. builds it (make deb) and installs it (dpkg -i): the module, its .load
#      and .conf are where Debian's httpd looks, the manual (README.md and
#      docs/*.md, the message catalogue among them) is in
#      /usr/share/doc/libapache2-mod-misdirect/ with the text of this tree,
#      and the live /etc/apache2 has no mods-enabled link for it (the
#      package leaves that to the administrator);
#   2. makes a private, minimal configuration in a mktemp -d directory: the
#      layout a2enmod and apache2ctl expect (apache2.conf, envvars,
#      mods-available, mods-enabled), with the system's mpm_event,
#      authz_core, dir and mime and the package's misdirect.load and .conf
#      (symbolic links), one Listen on a free loopback port, and its own
#      logs, run, lock and a2enmod state directories;
#   3. APACHE_CONFDIR=<that> a2enmod misdirect, apache2ctl configtest and
#      apache2ctl -M; starts httpd on it and sends a plain "GET /" (200)
#      and an absolute-form "GET https://..." on the plain port: the module
#      answers 421 (scheme-mismatch) and logs MISDIRECT001 in error_log;
#      then stops that httpd and checks that the port is closed;
#   4. a2dismod (private configuration again) and dpkg --purge, then checks
#      that no file the package installed (dpkg -L) is left and that
#      /etc/apache2 and /var/lib/apache2 are as they were before the check.
#
# It changes the system (a package), so it refuses to run where the
# package, or files of `make install`, are already there, and on failure
# still stops its httpd and purges what it installed; the private
# directory (configuration, logs, dpkg's output) is then kept for a look.
# Exits non-zero with a message naming the failed step.
set -euo pipefail
cd "$(dirname "$0")/.."

PKG=libapache2-mod-misdirect
MAKE=${MAKE:-make}
start=$(date +%s)
step="start"
work=""
installed=0

failed=0
fail() { echo "check-deb: FAILED at $step: $*" >&2; failed=1; exit 1; }
say() { echo "check-deb: $*"; }

pkg_status() {
    dpkg-query -W -f='${db:Status-Abbrev}' "$PKG" 2>/dev/null || true
}

# What the check must leave as it found it: every path under the live
# configuration and a2enmod's state, with its type, mode, size, link
# target, and the checksum of each file.
live_state() {
    find /etc/apache2 /var/lib/apache2 \
        \( -type d -printf '%p d %m\n' \) -o -printf '%p %y %m %s %l\n' \
        | LC_ALL=C sort
    find /etc/apache2 /var/lib/apache2 -type f -print0 | LC_ALL=C sort -z \
        | xargs -0 -r md5sum
}

# The private httpd, with the environment its envvars sets (as apache2ctl
# does, but never through systemctl).
private_httpd() {
    # shellcheck disable=SC1091
    ( set +u; . "$work/conf/envvars"; exec apache2 -d "$work/conf" "$@" )
}

httpd_pid() {
    [ -n "$work" ] && [ -s "$work/run/apache2.pid" ] \
        && cat "$work/run/apache2.pid"
}

stop_httpd() {
    local pid
    pid=$(httpd_pid) || return 0
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    private_httpd -k stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    return 1
}

cleanup() {
    local rc=$? f
    if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then
        echo "check-deb: FAILED at $step (exit $rc)" >&2
    fi
    stop_httpd || echo "check-deb: httpd $(httpd_pid) had to be killed" >&2
    if [ "$installed" = 1 ] && [ -n "$(pkg_status)" ] \
            && [ "$(pkg_status)" != "un " ]; then
        echo "check-deb: purging $PKG after the failure" >&2
        DEBIAN_FRONTEND=noninteractive dpkg --purge "$PKG" >/dev/null 2>&1 \
            || true
    fi
    # Only if the package enabled itself (a failure above): the
    # preconditions made sure these did not exist before.
    for f in /etc/apache2/mods-enabled/misdirect.load \
             /etc/apache2/mods-enabled/misdirect.conf; do
        if [ "$installed" = 1 ] && [ -L "$f" ]; then
            echo "check-deb: removing $f, made while it ran" >&2
            rm -f "$f"
        fi
    done
    if [ -n "$work" ]; then
        if [ "$rc" = 0 ]; then rm -rf "$work"
        else echo "check-deb: its configuration and logs: $work" >&2; fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$(id -u)" != 0 ]; then
    echo "check-deb: must run as root (dpkg -i, dpkg --purge)" >&2
    exit 1
fi

# --- 0. a system where the check can undo all it does -----------------------
step="preconditions"
case "$(pkg_status)" in
    ""|"un "|"pn ") ;;
    *) fail "$PKG is already installed ($(pkg_status)); the check would" \
            "purge it: dpkg --purge $PKG first" ;;
esac
for f in /usr/lib/apache2/modules/mod_misdirect.so \
         /etc/apache2/mods-available/misdirect.load \
         /etc/apache2/mods-available/misdirect.conf \
         /etc/apache2/mods-enabled/misdirect.load \
         /etc/apache2/mods-enabled/misdirect.conf; do
    if [ -e "$f" ] || [ -L "$f" ]; then
        fail "$f exists (from 'make install'?); the package would take it" \
             "over and purge it: remove it first"
    fi
done
for t in apache2 apache2ctl a2enmod a2dismod a2query perl md5sum; do
    command -v "$t" >/dev/null || fail "$t is missing"
done
for m in mpm_event authz_core dir mime; do
    [ -f "/etc/apache2/mods-available/$m.load" ] \
        || fail "/etc/apache2/mods-available/$m.load is missing"
done
# In /tmp, not $TMPDIR: httpd's children (www-data) read its htdocs.
work=$(mktemp -d /tmp/check-deb.XXXXXX)
chmod 755 "$work"
live_state >"$work/live-before"

# --- 1. build and install ---------------------------------------------------
step="make deb"
say "building the package (make deb)"
"$MAKE" --no-print-directory deb >/dev/null \
    || fail "make deb failed (run it alone to see why)"
deb=${DEB:-$(ls -t dist/${PKG}_*.deb | head -n 1)}
[ -f "$deb" ] || fail "$deb was not built"

step="dpkg -i"
say "installing $deb"
installed=1
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >"$work/dpkg.log" 2>&1 \
    || { cat "$work/dpkg.log" >&2; fail "dpkg -i $deb"; }
[ "$(pkg_status)" = "ii " ] \
    || fail "$PKG is not installed after dpkg -i ($(pkg_status))"
mapfile -t files < <(dpkg -L "$PKG")
for f in /usr/lib/apache2/modules/mod_misdirect.so \
         /etc/apache2/mods-available/misdirect.load \
         /etc/apache2/mods-available/misdirect.conf; do
    grep -qx -- "$f" <<<"$(printf '%s\n' "${files[@]}")" \
        || fail "dpkg -L $PKG does not list $f"
    [ -f "$f" ] || fail "$f is not installed"
done
so=/usr/lib/apache2/modules/mod_misdirect.so
grep -qx "LoadModule misdirect_module $so" \
    /etc/apache2/mods-available/misdirect.load \
    || fail "misdirect.load does not load the installed module"

step="the manual in /usr/share/doc"
# As dh_installdocs and dh_compress leave it: the tree's layout, so the
# links between the pages still lead somewhere, and gzip for the files
# larger than 4 kB (zcat -f reads both).
doc=/usr/share/doc/$PKG
ndocs=0
for f in README.md docs/*.md; do
    inst=$doc/$f
    [ -f "$inst" ] || inst=$inst.gz
    [ -f "$inst" ] || fail "$f is not installed as $doc/$f(.gz)"
    grep -qx -- "$inst" <<<"$(printf '%s\n' "${files[@]}")" \
        || fail "dpkg -L $PKG does not list $inst"
    zcat -f -- "$inst" | cmp -s - "$f" \
        || fail "$inst is not the text of $f"
    ndocs=$((ndocs + 1))
done
[ -f "$doc/docs/messages.md" ] || [ -f "$doc/docs/messages.md.gz" ] \
    || fail "no message catalogue (docs/messages.md) in $doc"
say "the manual: $ndocs pages in $doc"

step="not enabled in /etc/apache2"
for f in /etc/apache2/mods-enabled/misdirect.load \
         /etc/apache2/mods-enabled/misdirect.conf; do
    if [ -e "$f" ] || [ -L "$f" ]; then
        fail "the package made $f; it should wait for a2enmod"
    fi
done
if a2query -q -m misdirect; then
    fail "a2query reports misdirect enabled after dpkg -i"
fi
say "installed $(printf '%s\n' "${files[@]}" | wc -l) paths," \
    "module not enabled in /etc/apache2"

# --- 2. a private, minimal configuration ------------------------------------
step="private configuration"
conf=$work/conf
mkdir -p "$conf/mods-available" "$conf/mods-enabled" "$work/run" \
    "$work/lock" "$work/log" "$work/state" "$work/htdocs"
for f in mpm_event.load mpm_event.conf authz_core.load dir.load dir.conf \
         mime.load mime.conf misdirect.load misdirect.conf; do
    [ -e "/etc/apache2/mods-available/$f" ] || continue
    ln -s "/etc/apache2/mods-available/$f" "$conf/mods-available/$f"
done
# The base modules enabled by hand: only misdirect goes through a2enmod.
for f in mpm_event.load mpm_event.conf authz_core.load dir.load dir.conf \
         mime.load mime.conf; do
    [ -e "$conf/mods-available/$f" ] || continue
    ln -s "../mods-available/$f" "$conf/mods-enabled/$f"
done
port=$(perl -MIO::Socket::INET -e \
    'my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0,
         Proto => "tcp", Listen => 1) or die "$!\n"; print $s->sockport')
cat >"$conf/envvars" <<EOF
# check/deb.sh: read by apache2ctl and a2enmod (APACHE_CONFDIR=$conf)
unset HOME
export APACHE_RUN_USER=www-data
export APACHE_RUN_GROUP=www-data
export APACHE_PID_FILE='$work/run/apache2.pid'
export APACHE_RUN_DIR='$work/run'
export APACHE_LOCK_DIR='$work/lock'
export APACHE_LOG_DIR='$work/log'
export APACHE_STATE_DIRECTORY='$work/state'
export LANG=C
EOF
cat >"$conf/apache2.conf" <<EOF
# check/deb.sh: a minimal configuration, the layout of Debian's.
DefaultRuntimeDir \${APACHE_RUN_DIR}
PidFile \${APACHE_PID_FILE}
Mutex file:\${APACHE_LOCK_DIR} default
User \${APACHE_RUN_USER}
Group \${APACHE_RUN_GROUP}
ErrorLog \${APACHE_LOG_DIR}/error.log
LogLevel warn
Timeout 10
ServerName localhost

IncludeOptional mods-enabled/*.load
IncludeOptional mods-enabled/*.conf

Listen 127.0.0.1:$port

<Directory />
    AllowOverride None
    Require all denied
</Directory>

<VirtualHost 127.0.0.1:$port>
    ServerName localhost
    DocumentRoot "$work/htdocs"
    <Directory "$work/htdocs">
        Require all granted
    </Directory>
</VirtualHost>
EOF
echo 'check-deb' >"$work/htdocs/index.html"
chmod 644 "$work/htdocs/index.html"

# --- 3. enable there, configtest, serve requests ----------------------------
step="a2enmod (private configuration)"
APACHE_CONFDIR=$conf a2enmod misdirect >"$work/a2enmod.log" 2>&1 \
    || { cat "$work/a2enmod.log" >&2; fail "a2enmod misdirect"; }
for f in misdirect.load misdirect.conf; do
    [ "$(readlink "$conf/mods-enabled/$f")" = "../mods-available/$f" ] \
        || fail "a2enmod made no $conf/mods-enabled/$f link"
    if [ -e "/etc/apache2/mods-enabled/$f" ] \
            || [ -L "/etc/apache2/mods-enabled/$f" ]; then
        fail "a2enmod made /etc/apache2/mods-enabled/$f"
    fi
done
[ -f "$work/state/module/enabled_by_admin/misdirect" ] \
    || fail "a2enmod kept no state in $work/state"
stray=$(find /var/lib/apache2 -name 'misdirect*')
[ -z "$stray" ] || fail "a2enmod wrote to the live state: $stray"
if a2query -q -m misdirect; then
    fail "a2query reports misdirect enabled in /etc/apache2"
fi

step="apache2ctl configtest (private configuration)"
out=$(APACHE_CONFDIR=$conf apache2ctl configtest 2>&1) \
    || { echo "$out" >&2; fail "configtest"; }
grep -q 'Syntax OK' <<<"$out" \
    || { echo "$out" >&2; fail "configtest did not say Syntax OK"; }

step="apache2ctl -M (private configuration)"
# Not piped into grep -q: under pipefail, its early exit can fail the pipe.
out=$(APACHE_CONFDIR=$conf apache2ctl -M 2>&1) \
    || { echo "$out" >&2; fail "apache2ctl -M"; }
grep -q 'misdirect_module (shared)' <<<"$out" \
    || { echo "$out" >&2; fail "apache2ctl -M does not list misdirect_module"; }
say "a2enmod, configtest and apache2ctl -M in $conf:" \
    "misdirect_module (shared)"

step="httpd -k start"
private_httpd -k start >"$work/start.log" 2>&1 \
    || { cat "$work/start.log" "$work/log/error.log" 2>/dev/null >&2
         fail "httpd -k start"; }
for _ in $(seq 1 100); do
    [ -s "$work/run/apache2.pid" ] && break
    sleep 0.1
done
pid=$(httpd_pid) || fail "httpd wrote no pid file"
say "httpd $pid on 127.0.0.1:$port"

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
[[ "$status" =~ ^HTTP/1\.1\ 200\  ]] || fail "expected 200, got: $status"
say "GET / -> $status"

step="GET https://localhost/ on plain HTTP (421)"
status=$(request https://localhost/) || fail "no answer"
[[ "$status" =~ ^HTTP/1\.1\ 421\  ]] \
    || fail "expected 421 Misdirected Request, got: $status"
say "GET https://localhost/ -> $status"

step="error_log"
line=""
for _ in $(seq 1 50); do
    line=$(grep -m 1 'MISDIRECT001' "$work/log/error.log" 2>/dev/null) \
        && break
    sleep 0.1
done
[ -n "$line" ] || { tail -n 20 "$work/log/error.log" >&2 || true
                    fail "no MISDIRECT001 line in error_log"; }
grep -q '\[misdirect:error\]' <<<"$line" \
    || fail "MISDIRECT001 line is not tagged [misdirect:error]: $line"
grep -q 'scheme-mismatch' <<<"$line" \
    || fail "MISDIRECT001 line does not name scheme-mismatch: $line"
say "error_log: ${line:0:120}..."

step="stopping httpd"
stop_httpd || fail "httpd $pid did not stop within 10 s (killed)"
if perl -MIO::Socket::INET -e 'exit(IO::Socket::INET->new(
        PeerAddr => "127.0.0.1", PeerPort => $ARGV[0], Timeout => 2)
        ? 0 : 1)' "$port"; then
    fail "something still answers on 127.0.0.1:$port"
fi
if pgrep -f -- "-d $conf " >/dev/null; then
    fail "an httpd of $conf is still running"
fi
say "httpd stopped, 127.0.0.1:$port closed"

# --- 4. disable, purge, nothing left ----------------------------------------
step="a2dismod (private configuration)"
APACHE_CONFDIR=$conf a2dismod misdirect >>"$work/a2enmod.log" 2>&1 \
    || { cat "$work/a2enmod.log" >&2; fail "a2dismod misdirect"; }
for f in misdirect.load misdirect.conf; do
    if [ -e "$conf/mods-enabled/$f" ] || [ -L "$conf/mods-enabled/$f" ]; then
        fail "$conf/mods-enabled/$f is still there after a2dismod"
    fi
done

step="dpkg --purge"
DEBIAN_FRONTEND=noninteractive dpkg --purge "$PKG" >>"$work/dpkg.log" 2>&1 \
    || { cat "$work/dpkg.log" >&2; fail "dpkg --purge $PKG"; }
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
live_state >"$work/live-after"
if ! diff -u "$work/live-before" "$work/live-after" >"$work/live.diff"; then
    head -n 40 "$work/live.diff" >&2
    fail "/etc/apache2 or /var/lib/apache2 differ from before the check"
fi
say "purged: none of its ${#files[@]} paths is left; /etc/apache2 and" \
    "/var/lib/apache2 are as before"

say "passed in $(( $(date +%s) - start ))s"
