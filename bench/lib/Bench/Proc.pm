package Bench::Proc;
# The benchmark's processes and files: every process it starts is in
# %CHILDREN until reaped, and all are stopped on exit, also on error or
# signal.  Nothing here knows httpd.

use v5.36;
use Exporter qw(import);
use IO::Socket::INET;
use List::Util qw(max);
use POSIX qw(WNOHANG setpgid _exit);
use Time::HiRes qw(time sleep);

our @EXPORT = qw(%CHILDREN $TMP spawn reap stop run_all run1 must slurp
    spew free_port tail);

our %CHILDREN;         # pid => description, every process we started
our $TMP;              # the run's temporary directory

sub cleanup {
    for my $pid (keys %CHILDREN) {
        kill 'TERM', -$pid, $pid;
    }
    my $deadline = time + 15;
    while (%CHILDREN && time < $deadline) {
        for my $pid (keys %CHILDREN) {
            delete $CHILDREN{$pid} if waitpid($pid, WNOHANG) != 0;
        }
        sleep 0.1 if %CHILDREN;
    }
    for my $pid (keys %CHILDREN) {
        kill 'KILL', -$pid, $pid;
        waitpid $pid, 0;
        delete $CHILDREN{$pid};
    }
}
END { local ($?, $!, $@); cleanup() }
for my $sig (qw(INT TERM HUP PIPE)) {
    $SIG{$sig} = sub {
        warn "bench: caught SIG$sig, stopping servers\n";
        exit 130;
    };
}

# Starts a process in its own process group, output to $log.
sub spawn ($desc, $log, @cmd) {
    my $pid = fork // die "bench: fork: $!\n";
    if (!$pid) {
        setpgid(0, 0);
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log or _exit(126);
        open STDERR, '>&', \*STDOUT;
        exec @cmd or _exit(127);
    }
    $CHILDREN{$pid} = $desc;
    return $pid;
}

sub reap ($pid, $timeout) {
    my $deadline = time + $timeout;
    while (time < $deadline) {
        my $r = waitpid $pid, WNOHANG;
        if ($r == $pid || $r < 0) {
            delete $CHILDREN{$pid};
            return $?;
        }
        sleep 0.02;
    }
    return undef;
}

sub stop ($pid, $timeout = 30) {
    return unless $CHILDREN{$pid};
    kill 'TERM', $pid;
    return if defined reap($pid, $timeout);
    kill 'KILL', -$pid, $pid;
    reap($pid, 10);
}

# Runs commands side by side, each bounded by $timeout seconds; returns
# their outputs and exit codes, and the wall time until the last ended.
sub run_all ($timeout, @cmds) {
    my (@pids, @logs);
    my $t0 = time;
    for my $i (0 .. $#cmds) {
        my $log = "$TMP/run-$$-$i.out";
        unlink $log;
        push @logs, $log;
        push @pids, spawn("command @{ $cmds[$i] }[0..1]", $log, @{ $cmds[$i] });
    }
    my @rc;
    for my $i (0 .. $#pids) {
        my $left = max(1, $timeout - (time - $t0));
        my $rc = reap($pids[$i], $left);
        if (!defined $rc) {
            kill 'KILL', -$pids[$i], $pids[$i];
            reap($pids[$i], 10);
            die "bench: timed out after ${timeout}s: @{ $cmds[$i] }\n";
        }
        push @rc, $rc;
    }
    my $wall = time - $t0;
    my @out = map { slurp($_) } @logs;
    unlink @logs;
    return (\@out, \@rc, $wall);
}

sub run1 ($timeout, @cmd) {
    my ($out, $rc) = run_all($timeout, \@cmd);
    return ($rc->[0], $out->[0]);
}

sub must ($timeout, @cmd) {
    my ($rc, $out) = run1($timeout, @cmd);
    die "bench: failed (exit $rc): @cmd\n$out" if $rc;
    return $out;
}

sub slurp ($file) {
    open my $fh, '<', $file or return '';
    local $/;
    return scalar(<$fh>) // '';
}

sub spew ($file, $text) {
    open my $fh, '>', $file or die "bench: write $file: $!\n";
    print $fh $text;
    close $fh or die "bench: write $file: $!\n";
}

sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
        Proto => 'tcp', Listen => 1, ReuseAddr => 1)
        or die "bench: no free port: $!\n";
    my $port = $s->sockport;
    close $s;
    return $port;
}

sub tail ($text, $n) {
    my @l = split /\n/, $text;
    return join("\n", @l[max(0, @l - $n) .. $#l]) . "\n";
}

1;
