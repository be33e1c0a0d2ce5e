#!/usr/bin/perl
# Turns one kind of Debian documentation into plain English documents for scripts/fetch-corpus.
# Output: one paragraph per line, documents separated by one blank line; `finish` then cleans,
# filters and de-duplicates that stream. Usage: extract.pl MODE [ARGS...] (see the dispatch at the end).
use strict;
use warnings;
use utf8;
use Encode qw(decode FB_DEFAULT);

binmode STDOUT, ':encoding(UTF-8)';

# ---------------------------------------------------------------- helpers

sub slurp {    # a file, gunzipped when it ends in .gz or .dz, decoded from UTF-8 (bad bytes dropped)
    my ($path, $raw_bytes) = @_;
    my $fh;
    if ($path =~ /\.(gz|dz)$/) { open($fh, '-|', 'zcat', '--', $path) or die "zcat $path: $!\n"; }
    else { open($fh, '<', $path) or die "$path: $!\n"; }
    local $/;
    my $raw = <$fh>;
    close $fh;
    $raw = '' unless defined $raw;
    return $raw if $raw_bytes;
    my $text = decode('UTF-8', $raw, FB_DEFAULT);
    $text =~ s/\x{FFFD}//g;
    $text =~ s/\r\n?/\n/g;
    return $text;
}

sub squash { my ($s) = @_; $s =~ s/\s+/ /g; $s =~ s/^ //; $s =~ s/ $//; return $s; }

sub emit_doc {    # paragraphs -> one document
    my @p = grep { length } map { squash($_) } @_;
    return unless @p;
    print join("\n", @p), "\n\n";
}

sub paragraphs {    # split text at blank lines; lines of a paragraph joined by a space
    my ($text) = @_;
    return grep { /\S/ } map { squash($_) } split /\n[ \t]*\n/, $text;
}

# ---------------------------------------------------------------- dictd databases

sub b64num {
    my ($s) = @_;
    my $n = 0;
    for my $c (split //, $s) {
        $n = $n * 64 + index('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/', $c);
    }
    return $n;
}

sub dict_blocks {    # the entries of a dictd database, in file order, each once
    my ($base) = @_;
    my $bytes = slurp("$base.dict.dz", 1);    # offsets in the index count bytes
    my %seen;
    my @blocks;
    open(my $ix, '<', "$base.index") or die "$base.index: $!\n";
    while (<$ix>) {
        chomp;
        my ($word, $off, $len) = split /\t/;
        next unless defined $len;
        next if $word =~ /^00-?[a-z0-9]+-/;    # database information
        my $o = b64num($off);
        next if $seen{$o}++;
        push @blocks, [$o, b64num($len)];
    }
    close $ix;
    return map { decode('UTF-8', substr($bytes, $_->[0], $_->[1]), FB_DEFAULT) =~ tr/\x{FFFD}//dr } sort { $a->[0] <=> $b->[0] } @blocks;
}

my %GCIDE_CHAR = (
    "'e" => 'é', '`e' => 'è', '^e' => 'ê', '"e' => 'ë', "'a" => 'á', '`a' => 'à', '^a' => 'â', '"a' => 'ä',
    "'o" => 'ó', '`o' => 'ò', '^o' => 'ô', '"o' => 'ö', "'i" => 'í', '`i' => 'ì', '^i' => 'î', '"i' => 'ï',
    "'u" => 'ú', '`u' => 'ù', '^u' => 'û', '"u' => 'ü', '~n' => 'ñ', ',c' => 'ç', 'ae' => 'æ', 'AE' => 'Æ',
    'oe' => 'œ', 'OE' => 'Œ', 'eth' => 'ð', 'thorn' => 'þ', 'deg' => '°', 'sect' => '§', 'root' => '√',
    'imac' => 'ī', 'aum' => 'ä', 'add' => 'a', 'udd' => 'u', 'asl' => 'a', 'ng' => 'ng', 'th' => 'th',
    'frac12' => '½', 'frac14' => '¼', 'frac34' => '¾', 'pound' => '£', 'cent' => '¢', 'times' => '×',
    'divide' => '÷', 'middot' => '·', 'ddag' => '‡', 'dag' => '†', 'para' => '¶', 'hand' => '',
);

sub gcide_chars {    # [x^], [=a], ['e] ...: accent and symbol codes
    my ($s) = @_;
    $s =~ s{\[([\x27`^"~,=\-.]?)([A-Za-z]{1,6})([\^~]?)\]}{
        my ($pre, $l, $post) = ($1, $2, $3);
        exists $GCIDE_CHAR{"$pre$l"} ? $GCIDE_CHAR{"$pre$l"}
          : ($pre ne '' || $post ne '') && length($l) <= 2 ? $l : "[$pre$l$post]"
    }ge;
    return $s;
}

sub gcide_entry {
    my ($block) = @_;
    $block = gcide_chars($block);
    my @p = paragraphs($block);
    return unless @p;
    my @out;
    for my $i (0 .. $#p) {
        my $s = $p[$i];
        # pronunciation \Co*ag"u*late\ and the respelling in parentheses that may follow it
        $s =~ s/\s*\\[^\\\n]{1,80}\\(?:\s*\([^()]{0,80}\))?//g;
        # source and usage tags: [1913 Webster], [WordNet 1.5 +PJC], [Obs.] on a line of their own
        $s =~ s/\s*\[(?:[^\[\]]*(?:Webster|WordNet|PJC|Century|Chambers|Dict\.|Encyc|Stormonth|RDH|AS\b)[^\[\]]*)\]//g;
        # etymologies in the head line: [L. coagulatus, p. p. of ...]
        if ($i == 0) { 1 while $s =~ s/\s*\[(?:[^\[\]]++|\[[^\[\]]*\])*\]//; }
        $s =~ s/(?<=\w)[*"`](?=\w)//g;    # syllable and accent marks in derived forms
        $s =~ s/\{([^{}]*)\}/$1/g;
        $s =~ tr/{}//d;    # a few are unbalanced
        $s =~ s/\s+([,.;:])/$1/g;
        $s =~ s/,\s*$//;
        next unless $s =~ /\p{L}/;
        next if $s =~ /^\[[^\]]*\]\.?$/;
        push @out, $s;
    }
    return @out;
}

# the dictd modes take the database's path without .dict.dz/.index (.../usr/share/dictd/gcide)
sub mode_gcide { emit_doc(gcide_entry($_)) for dict_blocks($ARGV[0]); }

sub mode_foldoc {
    for my $block (dict_blocks($ARGV[0])) {
        $block =~ s/^\s*(\S[^\n]*)\n(?:[^\n]*\S[^\n]*\n)*/$1\n/;    # other headwords of the entry
        my @p = paragraphs($block);
        next unless @p;
        my @out;
        for my $s (@p) {
            next if $s =~ /^\(\d{4}-\d\d-\d\d\)$/;    # last-changed date
            next if $s =~ /^\[.*\]\.?$/;              # bibliographic reference
            $s =~ s/\{[^{}]*(?:https?|ftp|mailto|news|telnet|gopher):[^{}]*\}//g;    # links
            $s =~ s/\s*\(?(?:https?|ftp|gopher|telnet):\/\/\S+//g;
            $s =~ s/<(?:[\w ,&\/-]+)>\s*//g;    # <programming> category tags, e-mail addresses
            $s =~ s/\{([^{}]*)\}/$1/g;
            $s =~ s/__(.+?)__/$1/g;
            $s =~ s/\(\s*\)//g;
            next unless $s =~ /\p{L}/;
            push @out, $s;
        }
        # the headword alone is not prose: put it before the first paragraph of its definition
        if (@out > 1 && $out[0] !~ /\s/ || @out > 1 && length($out[0]) < 40 && $out[0] !~ /[.!?]$/) {
            my $h = shift @out;
            $out[0] = "$h: $out[0]";
        }
        emit_doc(@out) if @out;
    }
}

sub mode_devil {
    for my $block (dict_blocks($ARGV[0])) {
        my @out;
        for my $s (paragraphs($block)) {
            $s =~ s/\{([^{}]*)\}/$1/g;
            push @out, $s if $s =~ /\p{L}/;
        }
        emit_doc(@out);
    }
}

# ---------------------------------------------------------------- WordNet

sub mode_wordnet {    # the folder of data.{noun,verb,adj,adv} as argument
    my $dir = $ARGV[0];
    my %pos = (noun => 'noun', verb => 'verb', adj => 'adjective', adv => 'adverb');
    for my $kind (qw(noun verb adj adv)) {
        open(my $fh, '<:encoding(UTF-8)', "$dir/data.$kind") or die "data.$kind: $!\n";
        while (my $line = <$fh>) {
            next if $line =~ /^\s/;    # licence header
            my ($head, $gloss) = split /\s\|\s/, $line, 2;
            next unless defined $gloss;
            my @f = split ' ', $head;
            my $n = hex $f[3];
            my @words;
            for my $k (0 .. $n - 1) {
                my $w = $f[4 + 2 * $k];
                $w =~ s/\(\w+\)$//;    # adjective position markers
                $w =~ tr/_/ /;
                push @words, $w;
            }
            my %dup;
            @words = grep { !$dup{lc $_}++ } @words;
            $gloss = squash($gloss);
            next unless $gloss =~ /\p{L}/;
            emit_doc(join(', ', @words) . " ($pos{$kind}): $gloss");
        }
        close $fh;
    }
}

# ---------------------------------------------------------------- reStructuredText

# directives whose indented body is prose (their argument line is a signature or version and goes)
my $RST_KEEP = qr/^(?:note|warning|important|tip|hint|attention|caution|danger|admonition|seealso|
    versionadded|versionchanged|deprecated|deprecated-removed|impl-detail|
    function|method|class|attribute|data|exception|decorator|decoratormethod|describe|classmethod|
    staticmethod|abstractmethod|coroutinefunction|coroutinemethod|awaitablefunction|opcode|envvar|
    cmdoption|option|program|pdbcommand|2to3fixer|monitoring-event|
    c:\w+|cpp:\w+|js:\w+|py:\w+|rst:\w+)$/x;

sub rst_inline {
    my ($s) = @_;
    # roles :name:`text` / :name:`text <target>` / :name:`~a.b.c`
    $s =~ s{:[\w.+-]+(?::[\w.+-]+)*:`((?:[^`\\]|\\.)*)`}{
        my $t = $1;
        if ($t =~ /^(.*?)\s*<[^<>]*>$/s && length $1) { $t = $1; }
        elsif ($t =~ /^[~!]/) { $t =~ s/^[~!]//; $t =~ s/^.*\.(?=[^.]+$)// if $t =~ /^[\w.]+(?:\(\))?$/; }
        $t
    }ge;
    $s =~ s/``(.+?)``/$1/g;
    $s =~ s/`([^`<>]+?)\s*<[^<>`]*>`__?/$1/g;
    $s =~ s/`([^`]+)`_{0,2}/$1/g;
    $s =~ s/\s*\[(?:#[\w-]*|\d+|\*)\]_//g;
    $s =~ s/\|([^\s|](?:[^|]*[^\s|])?)\|_{0,2}/$1/g;
    $s =~ s/(?<![\w*\\])\*\*(\S(?:.*?\S)?)\*\*(?![\w*])/$1/g;
    $s =~ s/(?<![\w*\\])\*(\S(?:.*?\S)?)\*(?![\w*])/$1/g;
    $s =~ s/\\(.)/$1/g;
    return $s;
}

sub rst_docs {    # one document per section (the title is its first line)
    my ($text, $docname) = @_;
    $text =~ s/\t/        /g;
    my @lines = split /\n/, $text;
    push @lines, '';
    my @docs;
    my @cur;            # paragraphs of the current section
    my @para;           # lines of the current paragraph
    my $pind = -1;      # its indentation
    my $skip = -1;      # skip blank lines and lines indented more than this (a block we drop)
    my $literal = -1;   # the last paragraph ended in '::': a more indented block follows
    my $table = 0;      # inside a simple table
    my $opts = 0;       # at the option lines of a kept directive
    my $flush_para = sub {
        return unless @para;
        my $p = join(' ', @para);
        @para = ();
        if ($p =~ /::$/) {
            $literal = $pind;
            $p =~ s/\s*::$/$p =~ m{\s::$} ? '' : ':'/e;
        }
        $p = rst_inline($p);
        push @cur, $p if $p =~ /\p{L}/;
    };
    my $flush_doc = sub { push @docs, [@cur] if @cur; @cur = (); };
    for (my $i = 0; $i < @lines; $i++) {
        my $l = $lines[$i];
        $l =~ s/\s+$//;
        my ($ind) = $l =~ /^( *)/;
        $ind = length $ind;
        my $blank = $l eq '';
        if ($skip >= 0) {
            next if $blank || $ind > $skip;
            $skip = -1;
        }
        if ($literal >= 0) {
            next if $blank;
            if ($ind > $literal) { $skip = $literal; $literal = -1; next; }
            $literal = -1;
        }
        if ($table) {
            if ($l =~ /^\s*=+(?:\s+=+)+$/ && ($i + 1 >= @lines || $lines[$i + 1] =~ /^\s*$/)) { $table = 0; }
            next;
        }
        if ($blank) { $flush_para->(); $opts = 0; next; }
        my $t = substr($l, $ind);
        if ($opts) { next if $t =~ /^:[\w -]+:(?:\s|$)/; $opts = 0; }
        # section adornment (under- or overline) or transition
        if ($t =~ /^([=\-`:'"~^_*+#<>.])\1{2,}$/ && $ind == 0) {
            if (@para == 1 && $pind == 0) {
                my $title = rst_inline(pop @para);
                $flush_doc->();
                push @cur, $title;
            } else {
                $flush_para->();
            }
            next;
        }
        # tables
        if ($t =~ /^\+[-=+]+\+$/) { $flush_para->(); $skip = $ind - 1; $skip = 0 if $skip < 0; next; }
        if ($t =~ /^=+(?:\s+=+)+$/) { $flush_para->(); $table = 1; next; }
        if ($t =~ /^\|.*\|$/ && $t =~ /\s\|\s/) { $flush_para->(); next; }
        # explicit markup: directives, comments, targets, footnotes
        if ($t =~ /^\.\.(?:\s|$)/) {
            $flush_para->();
            if ($t =~ /^\.\.\s+([\w:-]+)::(.*)$/ && $1 =~ $RST_KEEP) { $opts = 1; next; }
            $skip = $ind;
            next;
        }
        # doctest blocks and field lists
        if ($t =~ /^>>>/) { $flush_para->(); $skip = $ind; next; }
        if ($t =~ /^:[\w -]+:(?:\s|$)/ && $t !~ /^:[\w -]+:`/) { $flush_para->(); next; }
        # list items start a paragraph
        my $len = length $t;
        if ($t =~ s/^(?:[-*+•]|#\.|\d{1,3}[.)]|\(\d{1,3}\)|\(?[a-z]\))\s+//) {
            $flush_para->();
            $t =~ s/^\[[ xX]\]\s+//;
            $ind += $len - length $t;    # continuation lines align with the item text
        }
        $t =~ s/^\|\s+//;    # line blocks
        if (@para && $ind != $pind) { $flush_para->(); }
        $pind = $ind unless @para;
        push @para, $t;
    }
    $flush_para->();
    $flush_doc->();
    return @docs;
}

sub mode_rst {    # file names on stdin
    while (my $path = <STDIN>) {
        chomp $path;
        emit_doc(@$_) for rst_docs(slurp($path), $path);
    }
}

# ---------------------------------------------------------------- POD

package CorpusPodText {
    use parent -norequire, 'Pod::Text';
    sub cmd_verbatim { return '' }
    sub cmd_i { return $_[2] }    # no *emphasis* marks
    sub cmd_b { return $_[2] }
    sub cmd_f { return $_[2] }
    sub heading {
        my ($self, $text) = @_;
        $self->item("\n\n") if defined $$self{ITEM};
        $text =~ s/\s+/ /g;
        $self->output("\n\x01$text\n\n");
        return '';
    }
}

sub mode_pod {    # file names on stdin
    require Pod::Text;
    while (my $path = <STDIN>) {
        chomp $path;
        my $out = '';
        my $p = CorpusPodText->new(width => 1_000_000, indent => 0, margin => 0, quotes => 'none', sentence => 0,
            utf8 => 1, errors => 'none');
        $p->output_string(\$out);
        $p->parse_file($path);
        $out = decode('UTF-8', $out, FB_DEFAULT) unless utf8::is_utf8($out);
        for my $sec (split /\x01/, $out) {
            my @p;
            for my $line (split /\n/, $sec) {
                next unless $line =~ /\S/;
                next if $line =~ /^\s*[*o]\s*$/;    # bare bullets
                $line =~ s/^\s*(?:\*|\d+\.)\s+//;
                push @p, $line;
            }
            emit_doc(@p);
        }
    }
}

# ---------------------------------------------------------------- man pages, rendered

my $MAN_DROP = qr/^(?:SYNOPSIS|SEE ALSO|COLOPHON|LIBRARY|ATTRIBUTES|STANDARDS|CONFORMING TO|COPYRIGHT|
    REPORTING BUGS|FILES|ENVIRONMENT|VERSIONS|AUTHORS?|OPTIONS SUMMARY|SUMMARY)$/x;

sub mode_man {    # man page files on stdin; each rendered by groff without line breaking or hyphenation
    local $ENV{LC_ALL} = 'C.UTF-8';
    while (my $path = <STDIN>) {
        chomp $path;
        open(my $head, '-|', 'zcat', '-f', '--', $path) or next;
        my $first = <$head>;
        close $head;
        next if !defined $first || $first =~ /^\.so\s/;    # a link to another page
        # what `man -l` runs (preconv, tbl, nroff), with a line too long to ever wrap; -P-cbou: no overstrikes
        my $q = $path =~ s/'/'\\''/gr;    # quoted for the shell
        open(my $fh, '-|', "zcat -f -- '$q' | groff -k -Kutf8 -t -mandoc -Tutf8 -rLL=10000n -rHY=0 -P-cbou 2>/dev/null")
            or next;
        binmode $fh, ':encoding(UTF-8)';
        my @lines = <$fh>;
        close $fh;
        shift @lines while @lines && $lines[0] =~ /^\s*$/;
        shift @lines;    # header
        pop @lines while @lines && $lines[-1] =~ /^\s*$/;
        pop @lines;      # footer
        my @doc;
        my $drop = 0;
        my @block;
        my $flush = sub {
            # a block: lines between blank lines. One line is a filled paragraph; several lines at one
            # indentation are no-fill text (code, tables, lists) and go; a short tag line followed by a
            # deeper paragraph (.TP) is put in front of it.
            my @b = @block;
            @block = ();
            return if $drop || !@b;
            my @ind = map { /^( *)/; length $1 } @b;
            for (my $k = 0; $k < @b; $k++) {
                my $same = ($k > 0 && $ind[$k - 1] == $ind[$k]) || ($k + 1 < @b && $ind[$k + 1] == $ind[$k]);
                next if $same;
                my $s = $b[$k];
                next if $s =~ /\S {3,}\S/;    # table row
                if ($k + 1 < @b && $ind[$k + 1] > $ind[$k] && length(squash($s)) < 80) {
                    my $n = $b[$k + 1];
                    next if ($k + 2 < @b && $ind[$k + 2] == $ind[$k + 1]) || $n =~ /\S {3,}\S/;
                    push @doc, squash($s) . ': ' . squash($n);
                    $k++;
                    next;
                }
                push @doc, $s;
            }
        };
        for my $l (@lines) {
            chomp $l;
            if ($l =~ /^\S/) {    # section heading
                $flush->();
                $drop = squash($l) =~ $MAN_DROP ? 1 : 0;
                next;
            }
            if ($l =~ /^\s*$/) { $flush->(); next; }
            push @block, $l;
        }
        $flush->();
        emit_doc(@doc);
    }
}

# ---------------------------------------------------------------- HTML (PostgreSQL)

my %ENT = (lt => '<', gt => '>', amp => '&', quot => '"', apos => "'", nbsp => ' ', mdash => '—',
    ndash => '–', hellip => '…', lsquo => '‘', rsquo => '’', ldquo => '“', rdquo => '”', copy => '©');

sub html_text {
    my ($s) = @_;
    $s =~ s/<[^>]*>//g;
    $s =~ s/&#x([0-9a-fA-F]+);/chr(hex $1)/ge;
    $s =~ s/&#(\d+);/chr($1)/ge;
    $s =~ s/&(\w+);/exists $ENT{$1} ? $ENT{$1} : ' '/ge;
    return squash($s);
}

sub mode_html {    # file names on stdin
    while (my $path = <STDIN>) {
        chomp $path;
        my $h = slurp($path);
        $h =~ s/^.*?<body[^>]*>//s;
        $h =~ s/<!--.*?-->//gs;
        # navigation, tables of contents, code, synopses, tables, indexes
        $h =~ s{<div class="(?:navheader|navfooter|toc|list-of-\w+|index)".*?</div>\s*(?=<(?:div|/body|h\d|p)[\s>])}{}gs;
        for my $tag (qw(pre table script style)) { 1 while $h =~ s{<$tag\b[^>]*>(?:(?!<$tag\b).)*?</$tag>}{}gs; }
        $h =~ s{<div class="(?:navheader|navfooter|toc)">.*?</div>}{}gs;
        $h =~ s{<div class="(?:navheader|navfooter)".*$}{}s;
        my @p;
        for my $chunk (split m{<(?:/?(?:p|h\d|li|dt|dd|div|tr|td|th|blockquote|br|ul|ol|dl)\b)[^>]*>}, $h) {
            my $t = html_text($chunk);
            push @p, $t if $t =~ /\p{L}/;
        }
        emit_doc(@p);
    }
}

# ---------------------------------------------------------------- KJV Bible, fortunes, Jargon File

sub mode_bible {    # the output of `bible -f Gen1:1-Rev22:21` on stdin: one verse a line, "Ge1:1 text"
    binmode STDIN, ':encoding(UTF-8)';
    my ($chap, @verses) = ('');
    while (my $l = <STDIN>) {
        next unless $l =~ /^(\S+?)(\d+):\d+\s+(.*)$/;
        my $c = "$1$2";
        if ($c ne $chap) { emit_doc(join ' ', @verses) if @verses; @verses = (); $chap = $c; }
        push @verses, $3;
    }
    emit_doc(join ' ', @verses) if @verses;
}

sub mode_fortune {    # fortune files as arguments
    for my $path (@ARGV) {
        for my $rec (split /^%\s*$/m, slurp($path)) {
            # keep the line structure (verse, dialogue, attributions) but drop blank lines and tabs
            my @l = grep { /\S/ } map { s/\s+$//r } split /\n/, $rec;
            next unless @l && join(' ', @l) =~ /\p{L}{2}/;
            print join("\n", map { squash($_) } @l), "\n\n";
        }
    }
}

sub mode_jargon {    # jargon.txt.gz as argument: the glossary entries ":word: /pron/, n."
    my $text = slurp($ARGV[0]);
    $text =~ s/^.*?(?=^   :)//ms;
    my @entries = split /^(?=   :[^:\n]+:)/m, $text;
    for my $e (@entries) {
        my @p = paragraphs($e);
        next unless @p;
        my $h = shift @p;
        next unless $h =~ s/^:([^:]+):\s*//;
        my $word = $1;
        $h =~ s/\/[^\/]*\/,?\s*//;    # pronunciation
        $h = squash("$word, $h");
        $h =~ s/,\s*$//;
        my @out;
        for my $s (@p) {
            $s =~ s/\{([^{}]*)\}/$1/g;
            push @out, $s if $s =~ /\p{L}/;
        }
        next unless @out;
        $out[0] = "$h: $out[0]";
        emit_doc(@out);
    }
}

# ---------------------------------------------------------------- SWORD modules, printed by diatheke

sub mode_sword {    # diatheke output on stdin ("Book C:V: text", continuation lines); ARGV: bible | comm
    my $kind = $ARGV[0] // 'bible';
    binmode STDIN, ':encoding(UTF-8)';
    my ($chap, @parts, %seen, $cur, $outline) = ('');
    my $end_entry = sub {
        return unless defined $cur;
        my $t = $cur;
        undef $cur;
        $t =~ s{<note\b[^>]*>.*?</note>}{ }gs;    # a footnote may stand between two words
        $t =~ s{<title\b[^>]*>.*?</title>}{}gs;
        $t =~ s{</w>(?=<w)}{</w> }g;    # the WEB's words come as <w>God</w><w>created</w>
        $t =~ s{<milestone[^>]*/>|<lb\s*/>}{ }g;
        $t = html_text($t) if $t =~ /[<&]/;
        $t =~ s/\s+([,.;:!?\x{2019}\x{201D}])(?=\s|$)/$1/g;
        if ($kind eq 'comm') {
            $t =~ s/\*?\s*\bVerses?\s+\d+(?:\s*[-,]\s*\d+)*\s*\*?\s{2,}/\n/g;    # "* Verses 3-5 *" headings
            $t =~ s/\*\s*([^*\n]+?)\s*\*/$1/g;    # italics
            $t =~ s/(?:^|(?<=\s))\*(?=\s|$)//g;
        }
        for my $p (split /\n/, $t) {
            $p = squash($p);
            # headings run into the text before them: "... Chapter 16", "... EXPOSITION"
            1 while $kind eq 'comm'
              && $p =~ s/\s*\b(?:Chapter \d+|OVERVIEW|EXPOSITION|EXPLANATORY NOTES AND QUAINT SAYINGS|
                  HINTS TO THE VILLAGE PREACHER|WORKS UPON THE [A-Z ]+ PSALM)$//x;
            if ($kind eq 'comm') {
                $p =~ s/^(?:Chapter \d+|Psalm \d+(?: OVERVIEW)?|Verses? \d+(?:\s*[-,]\s*\d+)*\.?)(?:\s+|$)//;
            }
            next unless $p =~ /\p{L}/;
            next if $kind eq 'comm' && $seen{$p}++;    # commentaries repeat an entry for each verse it covers
            push @parts, $p;
        }
    };
    my $end_chapter = sub {
        $end_entry->();
        if (@parts) { print $kind eq 'bible' ? join(' ', @parts) . "\n\n" : join("\n", @parts) . "\n\n"; }
        @parts = ();
    };
    # (in a commentary a key must start the line: its text quotes references like "Genesis 3:15:")
    my $lead = $kind eq 'bible' ? qr/.*?(?:\s|>)/ : qr/(?!)/;
    while (my $l = <STDIN>) {
        chomp $l;
        next if $l =~ /^\(\w+\)$/;    # the module name diatheke prints last
        # the key may follow a heading that diatheke repeats from an earlier verse: drop what precedes it
        if ($l =~ /^(?:|$lead)((?:[1-4] )?[A-Z][A-Za-z]*(?: (?:of )?\(?[A-Z][a-z]+\)?)*) (\d+):(\d+):\s?(.*)$/) {
            $end_entry->();
            $end_chapter->() if "$1 $2" ne $chap;
            $chap = "$1 $2";
            $cur = $4;
            $outline = 0;
            next;
        }
        if ($l =~ /^\s*Chapter Outline\s*$/) { $outline = 1; next; }    # MHCC: a list of topics follows
        if ($outline) { $outline = 0; next; }
        $cur .= "\n$l" if defined $cur;
    }
    $end_chapter->();
}

# ---------------------------------------------------------------- finish: clean, filter, de-duplicate

sub prose_ok {    # a paragraph of technical documentation that reads as prose, not code or debris
    my ($s) = @_;
    return 0 if $s =~ /[;{}]$|^[{}#\$%>|]|^\/[\/*]|^(?:\.\.\.|[+-]{2})\s/;
    my @tok = split ' ', $s;
    return 0 if @tok < 3;
    my $words = grep { /^[("'‘“]?\p{L}[\p{L}'’-]*[)"'’”]?[.,;:!?]?[)"'’”]?$/ } @tok;
    return 0 if $words < 0.6 * @tok;
    my $letters = () = $s =~ /\p{L}/g;
    my $nonspace = () = $s =~ /\S/g;
    return $letters >= 0.7 * $nonspace;
}

sub mode_finish {    # finish [--prose] [--dedup] [--min N]: stdin -> stdout, stats to stderr
    my %o = (prose => 0, dedup => 0, min => 20);
    while (@ARGV) {
        my $a = shift @ARGV;
        if ($a eq '--prose') { $o{prose} = 1 }
        elsif ($a eq '--dedup') { $o{dedup} = 1 }
        elsif ($a eq '--min') { $o{min} = shift @ARGV }
        else { die "finish: unknown option $a\n" }
    }
    binmode STDIN;
    my %seen;
    my ($docs, $bytes) = (0, 0);
    local $/ = '';    # paragraph mode: one document at a time
    while (my $doc = <STDIN>) {
        $doc = decode('UTF-8', $doc, FB_DEFAULT);
        my @out;
        for my $p (split /\n/, $doc) {
            $p =~ tr/\x{FFFD}\x{AD}\x{200B}\x{FEFF}//d;
            $p =~ s/[\x00-\x08\x0B-\x1F\x7F]//g;
            $p =~ s/^[\x{2022}\x{00B7}\x{25CF}\x{25E6}]\s*//;    # bullets
            $p =~ s/\s*<(?:https?|ftp|mailto):[^<>\s]*>//g;
            $p =~ s/\s*<[^<>\s@]+@[^<>\s@]+\.[a-z]{2,}>//gi;    # e-mail addresses of authors
            $p =~ s/[\x{00A0}\x{2000}-\x{200A}\x{202F}\x{3000}]/ /g;
            $p =~ s/\s+/ /g;
            $p =~ s/^ //;
            $p =~ s/ $//;
            next unless $p =~ /\p{L}/;
            next if $o{prose} && !prose_ok($p);
            if ($o{dedup} && length($p) >= 30) {
                my $k = lc $p;
                $k =~ s/[^\p{L}\p{N}]+//g;
                next if $seen{$k}++;
            }
            push @out, $p;
        }
        my $text = join("\n", @out);
        next if length($text) < $o{min};
        my $enc = Encode::encode('UTF-8', "$text\n\n");
        print STDOUT $enc;
        $docs++;
        $bytes += length $enc;
    }
    print STDERR "$docs $bytes\n";
}

# ---------------------------------------------------------------- dispatch

my %MODE = (gcide => \&mode_gcide, foldoc => \&mode_foldoc, devil => \&mode_devil, wordnet => \&mode_wordnet,
    rst => \&mode_rst, pod => \&mode_pod, man => \&mode_man, html => \&mode_html, bible => \&mode_bible,
    fortune => \&mode_fortune, sword => \&mode_sword, jargon => \&mode_jargon, finish => \&mode_finish);
my $mode = shift @ARGV // '';
die "usage: extract.pl {" . join('|', sort keys %MODE) . "} [args]\n" unless $MODE{$mode};
binmode STDOUT if $mode eq 'finish';
$MODE{$mode}->();
