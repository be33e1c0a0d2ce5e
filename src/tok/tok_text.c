/* Is this UTF-8 text? A look at the first bytes of a corpus file before it is tokenized: byte
 * order marks of UTF-16/32, the magic numbers of common binary formats, NUL bytes (and their
 * position pattern, which tells UTF-16/32 without a byte order mark from binary data), other
 * control characters and invalid UTF-8. One pass over the bytes; ASCII runs go 8 at a time. */
#include "tok/tok_internal.h"

#include <string.h>

static bool is_ctrl(uint8_t c) { /* C0 controls other than \t \n \v \f \r, and DEL; not NUL */
    return (c >= 0x01 && c <= 0x08) || (c >= 0x0E && c <= 0x1F) || c == 0x7F;
}

/* No byte with the high bit, below 0x20 or equal to 0x7F: plain printable ASCII. */
static bool printable8(uint64_t w) {
    const uint64_t hi = 0x8080808080808080ull, ones = 0x0101010101010101ull;
    if (w & hi) return false;
    if ((w - 0x20 * ones) & ~w & hi) return false; /* some byte < 0x20 */
    uint64_t d = w ^ (0x7F * ones);
    return !((d - ones) & ~d & hi); /* no byte == 0x7F */
}

void tok_text_scan(const void *data, size_t n, bool complete, tok_text_stats *st) {
    memset(st, 0, sizeof *st);
    st->first_bad = SIZE_MAX;
    const uint8_t *p = data;
    st->checked = n;
    size_t line = 1, i = 0;
#define BAD(off)                                                                                   \
    do {                                                                                           \
        if (st->first_bad == SIZE_MAX) {                                                           \
            st->first_bad = (off);                                                                 \
            st->first_bad_line = line;                                                             \
            st->first_bad_byte = p[(off)];                                                         \
        }                                                                                          \
    } while (0)
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (printable8(w)) {
                i += 8;
                continue;
            }
        }
        uint8_t c = p[i];
        if (c < 0x80) {
            if (c == '\n')
                line++;
            else if (c == 0) {
                st->nul++;
                st->nul_mod4[i & 3]++;
                BAD(i);
            } else if (is_ctrl(c)) {
                st->ctrl++;
                BAD(i);
            }
            i++;
            continue;
        }
        /* a multi-byte sequence: lead byte, then continuation bytes in [lo, hi] for the first
         * and [0x80, 0xBF] for the rest (excludes overlongs, surrogates, > U+10FFFF) */
        int need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c == 0xE0)
            need = 2, lo = 0xA0;
        else if (c == 0xED)
            need = 2, hi = 0x9F;
        else if (c >= 0xE1 && c <= 0xEF)
            need = 2;
        else if (c == 0xF0)
            need = 3, lo = 0x90;
        else if (c == 0xF4)
            need = 3, hi = 0x8F;
        else if (c >= 0xF1 && c <= 0xF3)
            need = 3;
        else { /* a stray continuation byte, C0/C1 or F5..FF */
            st->invalid++;
            BAD(i);
            i++;
            continue;
        }
        size_t k = 1;
        bool ok = true;
        for (; k <= (size_t)need; k++) {
            if (i + k >= n) { /* cut at the end of what was read */
                if (complete) ok = false;
                break;
            }
            uint8_t b = p[i + k];
            if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) {
                ok = false;
                break;
            }
        }
        if (!ok) {
            st->invalid++;
            BAD(i);
            i += k; /* resume at the byte that broke the sequence (or the end) */
            continue;
        }
        i += k;
    }
#undef BAD
}

/* What the NUL bytes' positions say: UTF-32 or UTF-16 of mostly ASCII text, or nothing. */
static const char *nul_pattern(const tok_text_stats *st, const char **iconv_name) {
    double q = (double)st->checked / 4.0;
    const size_t *z = st->nul_mod4;
#define HIGH(k) ((double)z[k] >= 0.6 * q)
#define LOW(k) ((double)z[k] <= 0.1 * q)
    if (q < 2) return NULL;
    if (LOW(0) && HIGH(1) && HIGH(2) && HIGH(3))
        return *iconv_name = "UTF-32LE", "UTF-32 (little-endian, no byte order mark)";
    if (HIGH(0) && HIGH(1) && HIGH(2) && LOW(3))
        return *iconv_name = "UTF-32BE", "UTF-32 (big-endian, no byte order mark)";
    if (LOW(0) && HIGH(1) && LOW(2) && HIGH(3))
        return *iconv_name = "UTF-16LE", "UTF-16 (little-endian, no byte order mark)";
    if (HIGH(0) && LOW(1) && HIGH(2) && LOW(3))
        return *iconv_name = "UTF-16BE", "UTF-16 (big-endian, no byte order mark)";
#undef HIGH
#undef LOW
    return NULL;
}

static bool starts(const uint8_t *p, size_t n, const char *magic, size_t m) {
    return n >= m && memcmp(p, magic, m) == 0;
}

int tok_text_check(const void *data, size_t n, bool complete, const char *name, char *msg,
                   size_t msglen) {
    const uint8_t *p = data;
    if (msglen) msg[0] = 0;
    if (!name) name = "the input";
    /* byte order marks: UTF-32 before UTF-16, whose little-endian mark is UTF-32's prefix */
    static const struct {
        const char *bom;
        size_t len;
        const char *what, *iconv;
    } boms[] = {{"\xFF\xFE\x00\x00", 4, "UTF-32 (little-endian)", "UTF-32"},
                {"\x00\x00\xFE\xFF", 4, "UTF-32 (big-endian)", "UTF-32"},
                {"\xFF\xFE", 2, "UTF-16 (little-endian)", "UTF-16"},
                {"\xFE\xFF", 2, "UTF-16 (big-endian)", "UTF-16"}};
    for (size_t k = 0; k < sizeof boms / sizeof *boms; k++)
        if (starts(p, n, boms[k].bom, boms[k].len)) {
            snprintf(msg, msglen,
                     "%s looks like %s: it starts with a byte order mark; cram reads UTF-8: "
                     "convert it to UTF-8 and replace it, e.g. iconv -f %s -t UTF-8 FILE > "
                     "FILE.new && mv FILE.new FILE",
                     name, boms[k].what, boms[k].iconv);
            return -1;
        }
    static const struct {
        const char *magic;
        size_t len;
        const char *what;
    } magics[] = {
        {"\x7F"
         "ELF",
         4, "an executable or library (ELF)"},
        {"\x1F\x8B", 2, "gzip-compressed (cram decompresses only .zst files: gunzip it first)"},
        {"\xFD"
         "7zXZ\x00",
         6, "xz-compressed (cram decompresses only .zst files: unxz it first)"},
        {"\x28\xB5\x2F\xFD", 4,
         "zstd-compressed but not named *.zst (rename it to end in .zst, and cram decompresses "
         "it)"},
        {"PK\x03\x04", 4, "a zip archive (unpack it first)"},
        {"7z\xBC\xAF\x27\x1C", 6, "a 7-zip archive (unpack it first)"},
        {"\x89PNG", 4, "a PNG image"},
        {"\xFF\xD8\xFF", 3, "a JPEG image"},
    };
    /* (each of these starts with a byte that is not printable ASCII or not valid UTF-8, so no
     * text file matches them) */
    for (size_t k = 0; k < sizeof magics / sizeof *magics; k++)
        if (starts(p, n, magics[k].magic, magics[k].len)) {
            snprintf(msg, msglen, "%s is not text: it looks like %s", name, magics[k].what);
            return -1;
        }
    if (n >= 10 && starts(p, n, "BZh", 3) && p[3] >= '1' && p[3] <= '9' &&
        starts(p + 4, n - 4, "1AY&SY", 6)) {
        snprintf(msg, msglen,
                 "%s is not text: it looks like bzip2-compressed data (cram decompresses only "
                 ".zst files: bunzip2 it first)",
                 name);
        return -1;
    }
    tok_text_stats st;
    tok_text_scan(data, n, complete, &st);
    size_t bad = st.nul + st.ctrl + st.invalid;
    if (bad == 0) return 0;
    /* "its 1234 bytes" or "its first 4194304 bytes"; "the first at offset 17 (line 2), byte 0x00"
     */
    char span[64], at[96], what[160] = "";
    snprintf(span, sizeof span, "its %s%zu bytes", complete ? "" : "first ", n);
    snprintf(at, sizeof at, "the first at offset %zu (line %zu), byte 0x%02X", st.first_bad,
             st.first_bad_line, st.first_bad_byte);
    const struct {
        size_t n;
        const char *one, *many;
    } kinds[] = {{st.nul, "NUL byte", "NUL bytes"},
                 {st.ctrl, "control character", "control characters"},
                 {st.invalid, "invalid UTF-8 sequence", "invalid UTF-8 sequences"}};
    int listed = 0, nonzero = (st.nul > 0) + (st.ctrl > 0) + (st.invalid > 0);
    for (int k = 0; k < 3; k++) {
        if (!kinds[k].n) continue;
        size_t w = strlen(what);
        snprintf(what + w, sizeof what - w, "%s%zu %s",
                 !listed                 ? ""
                 : listed + 1 == nonzero ? " and "
                                         : ", ",
                 kinds[k].n, kinds[k].n == 1 ? kinds[k].one : kinds[k].many);
        listed++;
    }
    bool too_many = bad >= TOK_TEXT_MIN_BAD && (double)bad >= TOK_TEXT_MAX_BAD_SHARE * (double)n;
    if (!too_many) {
        snprintf(msg, msglen,
                 "%s: %s in %s, %s; the tokenizer replaces or drops them (cram stops when they "
                 "make up %.0f%% of the bytes)",
                 name, what, span, at, 100 * TOK_TEXT_MAX_BAD_SHARE);
        return 1;
    }
    const char *iconv = NULL, *guess = NULL;
    if (st.nul >= TOK_TEXT_MIN_BAD && (double)st.nul >= TOK_TEXT_MAX_BAD_SHARE * (double)n)
        guess = nul_pattern(&st, &iconv);
    if (guess)
        snprintf(msg, msglen,
                 "%s looks like %s: %zu of %s are NUL; cram reads UTF-8: convert it to UTF-8 and "
                 "replace it, e.g. iconv -f %s -t UTF-8 FILE > FILE.new && mv FILE.new FILE",
                 name, guess, st.nul, span, iconv);
    else if (st.nul == 0 && st.ctrl == 0)
        snprintf(msg, msglen,
                 "%s is not UTF-8 text: %s in %s, %s; if it is Latin-1 or Windows-1252 text, "
                 "convert it, e.g. iconv -f WINDOWS-1252 -t UTF-8 FILE > FILE.new && mv FILE.new "
                 "FILE",
                 name, what, span, at);
    else
        snprintf(msg, msglen,
                 "%s does not look like text: %s in %s, %s; is it a binary file? cram reads UTF-8 "
                 "text (plain or JSON lines, optionally .zst)",
                 name, what, span, at);
    return -1;
}
