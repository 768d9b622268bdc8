# The documentation keeps up with the code: every MISDIRECTnnn message the
# C sources can log has its entry in docs/messages.md and every entry
# there is still logged; docs/directives.md names the module's identifier
# and every directive of the command table has its section there with
# the rows of httpd's manual (Status and Compatibility among them);
# README.md stays a front page (at most 250 lines); relative links in the
# Markdown files point to files (and headings) that exist; and no tracked
# file leans on a document outside the repository or on a tracker's issue
# numbers.  No server is started.
use v5.36;
use Test::More;
use File::Find qw(find);
use File::Basename qw(dirname);
use File::Spec;
use FindBin;

my $top = File::Spec->rel2abs("$FindBin::Bin/..");
chdir $top or die "chdir $top: $!";

sub slurp ($path) {
    open my $fh, '<:raw', $path or die "$path: $!";
    local $/;
    return scalar <$fh>;
}

# Markdown outside fenced code blocks and indented code, where links and
# headings live.
sub prose ($text) {
    my ($fence, @out) = (0);
    for my $line (split /\n/, $text) {
        if ($line =~ /^\s*(```|~~~)/) {
            $fence = !$fence;
            next;
        }
        next if $fence || $line =~ /^(    |\t)/;
        push @out, $line;
    }
    return @out;
}

# The anchors GitHub gives a file's headings: lower case, punctuation but
# '-' and '_' dropped, spaces to '-', repeats numbered.
sub anchors ($path) {
    my (%seen, %anchor);
    for my $line (prose(slurp($path))) {
        next unless $line =~ /^#{1,6}\s+(.*?)\s*#*\s*$/;
        my $a = lc $1;
        $a =~ s/\[([^\]]*)\]\([^)]*\)/$1/g;
        $a =~ s/[^\w\- ]//g;
        $a =~ s/ /-/g;
        my $n = $seen{$a}++;
        $anchor{ $n ? "$a-$n" : $a } = 1;
    }
    return \%anchor;
}

# --- messages --------------------------------------------------------------

my @c_files = ('mod_misdirect.c', glob('src/*.c'));
my %logged;
for my $f (@c_files) {
    my $text = slurp($f);
    $text =~ s{/\*.*?\*/}{}gs;              # a number in a comment is no line
    $logged{$1} //= $f while $text =~ /MISDIRECT_LOGNO\((\d{3})\)/g;
}
ok(scalar keys %logged, 'the sources log MISDIRECTnnn messages ('
    . join(', ', sort keys %logged) . ')');

my $messages = slurp('docs/messages.md');
my %entry;
for my $line (prose($messages)) {
    $entry{$1}++ if $line =~ /^##\s+MISDIRECT(\d{3})\s*$/;
}
for my $n (sort keys %logged) {
    ok($entry{$n}, "MISDIRECT$n ($logged{$n}) has an entry in "
        . 'docs/messages.md');
}
# A number no longer written keeps its entry, which says so: numbers are
# never used again.
my @blocks = split /^(?=## MISDIRECT\d{3}\s*$)/m, $messages;
shift @blocks;
my %retired = map { /^## MISDIRECT(\d{3})/ ? ($1 => 1) : () }
    grep { /^Not written since /m } @blocks;
for my $n (sort keys %entry) {
    ok(!!$logged{$n} != !!$retired{$n}, "docs/messages.md: MISDIRECT$n is "
        . ($retired{$n} ? 'retired and not logged' : 'logged by the sources'));
    is($entry{$n}, 1, "docs/messages.md: MISDIRECT$n has one entry");
}
# Each entry says its level, when, its cause and its fix.
for my $b (@blocks) {
    my ($n) = $b =~ /^## (MISDIRECT\d{3})/;
    next if $retired{ substr $n, 9 };
    for my $part ('Level', 'When', 'Cause', 'Fix') {
        like($b, qr/^- \*\*\Q$part\E\*\*: \S/m, "$n: $part");
    }
}

# --- directives ------------------------------------------------------------

my $module = slurp('mod_misdirect.c');
my @directives = slurp('src/misdirect_config.c')
    =~ /AP_INIT_\w+\(\s*"(Misdirect\w*)"/g;
ok(scalar @directives, 'the command table has directives ('
    . join(', ', @directives) . ')');
my $directives = slurp('docs/directives.md');
my @sections = split /^(?=## )/m, $directives;
# The page opens as a module page of httpd's manual does.
my ($identifier) = $module =~ /AP_DECLARE_MODULE\((\w+)\)/;
like($sections[0], qr/^\| Module Identifier \| `\Q${identifier}_module\E` \|\s*$/m,
    "docs/directives.md names the module identifier ${identifier}_module");
like($sections[0], qr/^\| Status \| Extension \|\s*$/m,
    'docs/directives.md: the module\'s status');
like($sections[0], qr/^\s+LoadModule \Q${identifier}_module\E \S+$/m,
    'docs/directives.md: the LoadModule line');
my %section = map { /^## (\S+)\s*\n/ ? ($1 => $_) : () } @sections;
for my $d (@directives) {
    ok($section{$d}, "docs/directives.md has a section for $d") or next;
    my @rows = $section{$d} =~ /^\| (\w+) \| \S[^\n]*\|\s*$/mg;
    is("@rows", 'Description Syntax Default Context Status Module '
        . 'Compatibility', "$d: the rows of httpd's manual, in its order");
    like($section{$d}, qr/^\| Status \| Extension \|\s*$/m,
        "$d: the Status row says Extension");
    like($section{$d}, qr/^\| Module \| mod_misdirect \|\s*$/m,
        "$d: the Module row names mod_misdirect");
    like($section{$d}, qr/^(?:    |\t)\Q$d\E\b/m,
        "$d: an example that uses it");
    like($section{$d}, qr/^\| Syntax \| `\Q$d\E\b/m,
        "$d: the syntax starts with the directive's name");
}
my %known = map { $_ => 1 } @directives;
for my $d (sort keys %section) {
    ok($known{$d}, "docs/directives.md: $d is in the command table");
}

# --- README.md is a front page ---------------------------------------------

my $lines = () = slurp('README.md') =~ /\n/g;
cmp_ok($lines, '<=', 250, "README.md has at most 250 lines ($lines)");

# --- relative links --------------------------------------------------------

my @md = ('README.md', 'HACKING.md', 'bench/README.md', glob('docs/*.md'));
my %anchor_cache;
for my $file (@md) {
    ok(-f $file, "$file exists") or next;
    my $dir = dirname($file);
    my $n = 0;
    for my $line (prose(slurp($file))) {
        # Inline code is not a link.
        (my $text = $line) =~ s/`[^`]*`//g;
        while ($text =~ /\]\(([^)\s]+)\)/g) {
            my $target = $1;
            next if $target =~ m{^[a-z][a-z0-9+.-]*:}i;    # http:, mailto:
            $n++;
            my ($path, $frag) = $target =~ /^([^#]*)(?:#(.*))?$/;
            my $to = length $path ? File::Spec->canonpath("$dir/$path")
                                  : $file;
            ok(-e $to, "$file: link $target: $to exists") or next;
            next unless defined $frag;
            if (-d $to) {
                fail("$file: link $target: an anchor into a directory");
                next;
            }
            $anchor_cache{$to} //= anchors($to);
            ok($anchor_cache{$to}{$frag},
                "$file: link $target: $to has a heading #$frag");
        }
    }
    note("$file: $n relative links");
}

# --- nothing points outside the repository ----------------------------------

# The tracked files, and the documents above even before they are
# committed; outside a git checkout (a copy, a tarball), every file but
# what builds and runs leave behind.
my @tracked = grep { -f $_ } split /\n/, `git ls-files 2>/dev/null`;
unless (@tracked) {
    find({ no_chdir => 1, wanted => sub {
        if (-d $_ && m{^\./(?:\.git|t/tmp|\.libs|src/\.libs|check/build|dist)$}) {
            $File::Find::prune = 1;
            return;
        }
        push @tracked, s{^\./}{}r if -f $_ && !/\.(?:l?o|la|so)$/;
    } }, '.');
}
{
    my %seen;
    my @bad;
    for my $f (grep { !$seen{$_}++ } @tracked, @md, 't/92-docs.t') {
        next if $f =~ m{^fuzz/corpus/};        # fuzzer inputs, not prose
        my $text = slurp($f);
        next if $text =~ /\0/;                 # binary
        my $ln = 0;
        for my $line (split /\n/, $text) {
            $ln++;
            push @bad, "$f:$ln: $line"
                if $line =~ /\b(?:SPEC|STYLE)\.md\b/i     # documents elsewhere
                || $line =~ /\bissues?\s*#?\d/i          # a tracker's numbers
                || $line =~ /(?:^|[\s(])#\d+\b/;
        }
    }
    is(scalar @bad, 0, 'no file cites a document outside the repository '
        . 'or a numbered issue') or diag(join "\n", @bad);
}

done_testing();
