/* tok files: vocab.txt and Hugging Face tokenizer.json (write and read), tokenizer_config.json and
 * special_tokens_map.json. Readers check every field and return TOK_EFORMAT with a message. */
#include "core/fileio.h"
#include "tok/tok_internal.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const role_keys[TOK_NROLES] = {
    "pad_token", "bos_token", "eos_token", "unk_token", "cls_token", "sep_token", "mask_token"};

/* ---------------- JSON writing ---------------- */
static void json_str(tok_strbuf *b, const char *s, size_t n) {
    tok_sb_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        switch (c) {
        case '"':
            tok_sb_put(b, "\\\"", 2);
            break;
        case '\\':
            tok_sb_put(b, "\\\\", 2);
            break;
        case '\n':
            tok_sb_put(b, "\\n", 2);
            break;
        case '\r':
            tok_sb_put(b, "\\r", 2);
            break;
        case '\t':
            tok_sb_put(b, "\\t", 2);
            break;
        default:
            if (c < 0x20 || c == 0x7F) {
                char u[8];
                snprintf(u, sizeof(u), "\\u%04x", c);
                tok_sb_put(b, u, 6);
            } else {
                tok_sb_putc(b, (char)c);
            }
        }
    }
    tok_sb_putc(b, '"');
}

static void json_cstr(tok_strbuf *b, const char *s) {
    json_str(b, s, strlen(s));
}

static void json_fmt(tok_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void json_fmt(tok_strbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0) tok_sb_put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static const char *tokstr(const tok_tokenizer *t, int32_t id) {
    return id >= 0 ? t->tok[id] : NULL;
}

static void write_normalizer(const tok_tokenizer *t, tok_strbuf *b) {
    if (t->norm_kind == TOK_NORM_BERT) {
        json_fmt(b,
                 "{\"type\":\"BertNormalizer\",\"clean_text\":true,\"handle_chinese_chars\":true,"
                 "\"strip_accents\":null,\"lowercase\":true}");
        return;
    }
    if (t->norm_kind == TOK_NORM_NONE) {
        json_fmt(b, "null");
        return;
    }
    const tok_norm_opts *o = &t->norm;
    json_fmt(b, "{\"type\":\"Sequence\",\"normalizers\":["
                "{\"type\":\"Replace\",\"pattern\":{\"String\":\"``\"},\"content\":\"\\\"\"},"
                "{\"type\":\"Replace\",\"pattern\":{\"String\":\"''\"},\"content\":\"\\\"\"},");
    json_fmt(b, "{\"type\":\"%s\"}", o->strip_accents ? "NFD" : "NFKC");
    if (o->force_lowercase) json_fmt(b, ",{\"type\":\"Lowercase\"}");
    if (o->strip_accents) json_fmt(b, ",{\"type\":\"StripAccents\"}");
    json_fmt(b, ",{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" {2,}\"},\"content\":\" \"}");
    if (o->force_english_keyboard)
        json_fmt(b, ",{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"[^\\\\x00-\\\\x7F]+\"},"
                    "\"content\":\"\"}");
    if (o->whitespace_escape)
        json_fmt(
            b,
            ",{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" \"},\"content\":\"\xE4\xB8\x80\"}");
    json_fmt(b, "]}");
}

static void tpl_special(const tok_tokenizer *t, tok_strbuf *b, int32_t id, int type) {
    json_fmt(b, "{\"SpecialToken\":{\"id\":");
    json_cstr(b, tokstr(t, id));
    json_fmt(b, ",\"type_id\":%d}}", type);
}

static void write_post(const tok_tokenizer *t, tok_strbuf *b) {
    int32_t cls = t->special[TOK_CLS], sep = t->special[TOK_SEP];
    if (cls < 0 || sep < 0) {
        json_fmt(b, "null");
        return;
    }
    int tb = t->use_type_ids ? 1 : 0;
    json_fmt(b, "{\"type\":\"TemplateProcessing\",\"single\":[");
    if (t->include_cls) tpl_special(t, b, cls, 0), tok_sb_putc(b, ',');
    json_fmt(b, "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}");
    if (t->include_sep) tok_sb_putc(b, ','), tpl_special(t, b, sep, 0);
    json_fmt(b, "],\"pair\":[");
    tpl_special(t, b, cls, 0);
    json_fmt(b, ",{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},");
    tpl_special(t, b, sep, 0);
    json_fmt(b, ",{\"Sequence\":{\"id\":\"B\",\"type_id\":%d}},", tb);
    tpl_special(t, b, sep, tb);
    json_fmt(b, "],\"special_tokens\":{");
    int32_t ids[2] = {cls, sep};
    for (int k = 0; k < 2; k++) {
        if (k) tok_sb_putc(b, ',');
        json_cstr(b, tokstr(t, ids[k]));
        json_fmt(b, ":{\"id\":");
        json_cstr(b, tokstr(t, ids[k]));
        json_fmt(b, ",\"ids\":[%d],\"tokens\":[", ids[k]);
        json_cstr(b, tokstr(t, ids[k]));
        json_fmt(b, "]}");
    }
    json_fmt(b, "}}");
}

static int tok_to_json(const tok_tokenizer *t, tok_strbuf *b) {
    json_fmt(b, "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[");
    for (int k = 0; k < t->n_added; k++) {
        int32_t id = t->added[k];
        if (k) tok_sb_putc(b, ',');
        json_fmt(b, "{\"id\":%d,\"content\":", id);
        json_str(b, t->tok[id], t->tok_len[id]);
        json_fmt(b, ",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,"
                    "\"special\":true}");
    }
    json_fmt(b, "],\n\"normalizer\":");
    write_normalizer(t, b);
    json_fmt(b, ",\n\"pre_tokenizer\":");
    if (t->pre == TOK_PRE_WHITESPACE)
        json_fmt(b, "{\"type\":\"Whitespace\"}");
    else if (t->pre == TOK_PRE_BERT)
        json_fmt(b, "{\"type\":\"BertPreTokenizer\"}");
    else
        json_fmt(b, "{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,\"use_"
                    "regex\":true}");
    json_fmt(b, ",\n\"post_processor\":");
    write_post(t, b);
    json_fmt(b, ",\n\"decoder\":");
    if (t->model == TOK_MODEL_WORDPIECE) {
        json_fmt(b, "{\"type\":\"WordPiece\",\"prefix\":");
        json_str(b, t->prefix, (size_t)t->prefix_len);
        json_fmt(b, ",\"cleanup\":true}");
    } else {
        json_fmt(b, "{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,\"use_"
                    "regex\":true}");
    }
    json_fmt(b, ",\n\"model\":");
    if (t->model == TOK_MODEL_WORDPIECE) {
        json_fmt(b, "{\"type\":\"WordPiece\",\"unk_token\":");
        int32_t unk = t->special[TOK_UNK];
        json_cstr(b, unk >= 0 ? t->tok[unk] : "<unk>");
        json_fmt(b, ",\"continuing_subword_prefix\":");
        json_str(b, t->prefix, (size_t)t->prefix_len);
        json_fmt(b, ",\"max_input_chars_per_word\":%d,\"vocab\":{", t->max_input_chars);
    } else {
        json_fmt(b, "{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,\"continuing_subword_"
                    "prefix\":null,"
                    "\"end_of_word_suffix\":null,\"fuse_unk\":false,\"byte_fallback\":false,"
                    "\"ignore_merges\":false,"
                    "\"vocab\":{");
    }
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (i) tok_sb_putc(b, ',');
        tok_sb_putc(b, '\n');
        json_str(b, t->tok[i], t->tok_len[i]);
        json_fmt(b, ":%d", i);
    }
    json_fmt(b, "}");
    if (t->model == TOK_MODEL_BPE) {
        json_fmt(b, ",\"merges\":[");
        for (int32_t i = 0; i < t->n_merges; i++) {
            if (i) tok_sb_putc(b, ',');
            tok_sb_putc(b, '\n');
            tok_sb_putc(b, '[');
            json_str(b, t->tok[t->merge_a[i]], t->tok_len[t->merge_a[i]]);
            tok_sb_putc(b, ',');
            json_str(b, t->tok[t->merge_b[i]], t->tok_len[t->merge_b[i]]);
            tok_sb_putc(b, ']');
        }
        json_fmt(b, "]");
    }
    json_fmt(b, "}}\n");
    return TOK_OK;
}

static int write_buf(const char *path, const tok_strbuf *b, char *err) {
    char e[TOK_ERRLEN] = {0};
    if (core_atomic_write(path, b->v ? b->v : "", b->n, e, sizeof(e)) != 0) {
        tok_errf(err, "cannot write %s: %s", path, e);
        return TOK_EIO;
    }
    return TOK_OK;
}

int tok_save_tokenizer_json(const tok_tokenizer *t, const char *path, char *err) {
    tok_strbuf b = {0};
    tok_to_json(t, &b);
    int rc = write_buf(path, &b, err);
    free(b.v);
    return rc;
}

int tok_save_vocab_txt(const tok_tokenizer *t, const char *path, char *err) {
    tok_strbuf b = {0};
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (memchr(t->tok[i], '\n', t->tok_len[i])) {
            free(b.v);
            tok_errf(err, "token %d contains a newline: it cannot be written to vocab.txt", i);
            return TOK_EINVAL;
        }
        tok_sb_put(&b, t->tok[i], t->tok_len[i]);
        tok_sb_putc(&b, '\n');
    }
    int rc = write_buf(path, &b, err);
    free(b.v);
    return rc;
}

static int save_configs(const tok_tokenizer *t, const char *dir, char *err) {
    char path[CORE_PATH_MAX];
    tok_strbuf b = {0};
    /* special_tokens_map.json */
    tok_sb_putc(&b, '{');
    int k = 0;
    for (int r = 0; r < TOK_NROLES; r++) {
        if (t->special[r] < 0) continue;
        json_fmt(&b, "%s\n  \"%s\": ", k++ ? "," : "", role_keys[r]);
        json_str(&b, t->tok[t->special[r]], t->tok_len[t->special[r]]);
    }
    json_fmt(&b, "\n}\n");
    core_path_join(path, sizeof(path), dir, "special_tokens_map.json");
    int rc = write_buf(path, &b, err);
    /* tokenizer_config.json */
    b.n = 0;
    json_fmt(
        &b, "{\n  \"tokenizer_class\": \"PreTrainedTokenizerFast\",\n  \"model_max_length\": %d,\n",
        t->model_max_length);
    json_fmt(&b, "  \"clean_up_tokenization_spaces\": %s",
             t->model == TOK_MODEL_WORDPIECE ? "true" : "false");
    for (int r = 0; r < TOK_NROLES; r++) {
        if (t->special[r] < 0) continue;
        json_fmt(&b, ",\n  \"%s\": ", role_keys[r]);
        json_str(&b, t->tok[t->special[r]], t->tok_len[t->special[r]]);
    }
    json_fmt(&b, ",\n  \"cram_tokenizer\": \"%s\"\n}\n", t->kind_name);
    core_path_join(path, sizeof(path), dir, "tokenizer_config.json");
    if (rc == TOK_OK) rc = write_buf(path, &b, err);
    free(b.v);
    return rc;
}

int tok_save(const tok_tokenizer *t, const char *dir, char *err) {
    char e[TOK_ERRLEN] = {0}, path[CORE_PATH_MAX];
    if (!t || !dir) {
        tok_errf(err, "tok_save: NULL argument");
        return TOK_EINVAL;
    }
    if (core_mkdir_p(dir, e, sizeof(e)) != 0) {
        tok_errf(err, "cannot create %s: %s", dir, e);
        return TOK_EIO;
    }
    core_path_join(path, sizeof(path), dir, "tokenizer.json");
    int rc = tok_save_tokenizer_json(t, path, err);
    if (rc == TOK_OK && t->model == TOK_MODEL_WORDPIECE) {
        core_path_join(path, sizeof(path), dir, "vocab.txt");
        rc = tok_save_vocab_txt(t, path, err);
    }
    if (rc == TOK_OK) rc = save_configs(t, dir, err);
    return rc;
}

/* ---------------- reading ---------------- */
/* The first token equal to an earlier one: its index, with the earlier one's in *first; -1 when
 * every token is unique. A repeated token would leave one of its ids unreachable (HF keeps the
 * last), so readers refuse it. */
static int32_t first_duplicate(const char *const *toks, const uint32_t *lens, int32_t n,
                               int32_t *first) {
    tok_map m;
    tok_map_init(&m, (size_t)n + 1);
    int32_t dup = -1;
    for (int32_t i = 0; i < n && dup < 0; i++) {
        int64_t *v = tok_map_put(&m, tok_hash_bytes(toks[i], lens[i]) | 1, i);
        int32_t j = (int32_t)*v;
        /* (two different tokens with one 64-bit hash are not reported) */
        if (j != i && lens[j] == lens[i] && !memcmp(toks[j], toks[i], lens[i])) {
            *first = j;
            dup = i;
        }
    }
    tok_map_free(&m);
    return dup;
}

/* A token for a message: printable ASCII and UTF-8 as they are, other bytes as \xNN, at most
 * ~40 bytes. */
static void show_token(char *out, size_t outlen, const char *s, uint32_t n) {
    size_t k = 0;
    for (uint32_t i = 0; i < n && k + 8 < outlen; i++) {
        uint8_t c = (uint8_t)s[i];
        if (k >= 40) {
            memcpy(out + k, "...", 3);
            k += 3;
            break;
        }
        if (c < 0x20 || c == 0x7F || c == '"' || c == '\\')
            k += (size_t)snprintf(out + k, outlen - k, "\\x%02X", c);
        else
            out[k++] = (char)c;
    }
    out[k] = 0;
}

static int vocab_from_lines(tok_tokenizer *t, const char *data, size_t len, char *err) {
    /* one token per line ("\n" or "\r\n"), trailing white space trimmed (HF WordPiece::read_file)
     */
    size_t cap = 1024, n = 0;
    const char **toks = malloc(cap * sizeof(char *));
    uint32_t *lens = malloc(cap * sizeof(uint32_t));
    if (!toks || !lens) abort();
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - data) : len;
        size_t e = end;
        while (e > i && (data[e - 1] == '\r' || data[e - 1] == ' ' || data[e - 1] == '\t' ||
                         data[e - 1] == '\v' || data[e - 1] == '\f'))
            e--;
        if (e - i > 0xFFFFFF) {
            free(toks);
            free(lens);
            tok_errf(err, "vocab line %zu is too long", n + 1);
            return TOK_EFORMAT;
        }
        if (n == cap) {
            cap *= 2;
            toks = realloc(toks, cap * sizeof(char *));
            lens = realloc(lens, cap * sizeof(uint32_t));
            if (!toks || !lens) abort();
        }
        toks[n] = data + i;
        lens[n] = (uint32_t)(e - i);
        n++;
        i = end + 1;
    }
    int rc = TOK_OK;
    if (n == 0 || n > 0x7FFFFFF0) {
        tok_errf(err, "vocabulary is empty");
        rc = TOK_EFORMAT;
    } else {
        for (size_t k = 0; k < n && rc == TOK_OK; k++)
            if (!tok_utf8_valid(toks[k], lens[k])) {
                tok_errf(err, "vocab line %zu is not valid UTF-8", k + 1);
                rc = TOK_EFORMAT;
            }
    }
    int32_t first = -1, dup = rc == TOK_OK ? first_duplicate(toks, lens, (int32_t)n, &first) : -1;
    if (dup >= 0) {
        char shown[64];
        show_token(shown, sizeof shown, toks[dup], lens[dup]);
        tok_errf(err,
                 "vocab line %d repeats the token \"%s\" of line %d: each token must appear once "
                 "(a repeated token leaves one of its ids unreachable)",
                 dup + 1, shown, first + 1);
        rc = TOK_EFORMAT;
    }
    if (rc == TOK_OK) rc = tok_set_vocab(t, toks, lens, (int32_t)n, err);
    free(toks);
    free(lens);
    return rc;
}

int tok_load_vocab_txt_mem(tok_tokenizer **out, const char *data, size_t len, const tok_options *o,
                           char *err) {
    *out = NULL;
    tok_options def;
    if (!o) { /* a bare vocab.txt: the HF BERT rules */
        tok_options_default(&def);
        def.tokenizer = "WordPieceBERT";
        def.include_cls_token_in_corpus = true;
        def.include_sep_token_in_corpus = true;
        def.use_type_ids = true;
        def.seq_length = 512;
        o = &def;
    }
    tok_tokenizer *t;
    int rc = tok_create(&t, o, err);
    if (rc) return rc;
    if (t->model != TOK_MODEL_WORDPIECE) {
        tok_free(t);
        tok_errf(err, "a vocab.txt holds a WordPiece vocabulary, not %s", o->tokenizer);
        return TOK_EINVAL;
    }
    rc = vocab_from_lines(t, data, len, err);
    if (rc == TOK_OK && t->special[TOK_UNK] < 0) {
        tok_errf(err, "vocabulary has no unknown token (<unk> or [UNK])");
        rc = TOK_EFORMAT;
    }
    if (rc) {
        tok_free(t);
        return rc;
    }
    *out = t;
    return TOK_OK;
}

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool jtrue(const cJSON *o, const char *key) {
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* Recognise the normalizers cram implements; anything else is an error (never a silent mismatch).
 */
static int parse_normalizer(tok_tokenizer *t, const cJSON *n, char *err) {
    if (!n || cJSON_IsNull(n)) {
        t->norm_kind = TOK_NORM_NONE;
        return TOK_OK;
    }
    const char *type = jstr(n, "type");
    if (!type) goto bad;
    if (!strcmp(type, "BertNormalizer")) {
        const cJSON *sa = cJSON_GetObjectItemCaseSensitive(n, "strip_accents");
        bool lower = jtrue(n, "lowercase");
        bool strip = cJSON_IsNull(sa) || !sa ? lower : cJSON_IsTrue(sa);
        if (!jtrue(n, "clean_text") || !jtrue(n, "handle_chinese_chars") || !lower || !strip) {
            tok_errf(err, "tokenizer.json: only BertNormalizer with clean_text, "
                          "handle_chinese_chars, lowercase and "
                          "strip_accents is supported");
            return TOK_EFORMAT;
        }
        t->norm_kind = TOK_NORM_BERT;
        return TOK_OK;
    }
    if (strcmp(type, "Sequence")) goto bad;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
    if (!cJSON_IsArray(list)) goto bad;
    /* expected: Replace `` , Replace '' , NFD|NFKC , [Lowercase] , [StripAccents] , Replace " {2,}"
     * , [Replace non-ASCII] , [Replace " " -> U+4E00] */
    tok_norm_opts o = {0};
    int stage = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        const char *ty = jstr(it, "type");
        if (!ty) goto bad;
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(it, "pattern");
        const char *ps = pat ? jstr(pat, "String") : NULL, *pr = pat ? jstr(pat, "Regex") : NULL;
        const char *content = jstr(it, "content");
        if (stage == 0 && !strcmp(ty, "Replace") && ps && !strcmp(ps, "``") && content &&
            !strcmp(content, "\""))
            stage = 1;
        else if (stage == 1 && !strcmp(ty, "Replace") && ps && !strcmp(ps, "''") && content &&
                 !strcmp(content, "\""))
            stage = 2;
        else if (stage == 2 && (!strcmp(ty, "NFD") || !strcmp(ty, "NFKC"))) {
            o.strip_accents = !strcmp(ty, "NFD");
            stage = 3;
        } else if (stage == 3 && !strcmp(ty, "Lowercase")) {
            o.force_lowercase = true;
            stage = 4;
        } else if ((stage == 3 || stage == 4) && !strcmp(ty, "StripAccents") && o.strip_accents)
            stage = 5;
        else if (stage >= 3 && stage <= 5 && !strcmp(ty, "Replace") && pr && !strcmp(pr, " {2,}") &&
                 content && !strcmp(content, " "))
            stage = 6;
        else if (stage == 6 && !strcmp(ty, "Replace") && pr && !strcmp(pr, "[^\\x00-\\x7F]+") &&
                 content && !strcmp(content, "")) {
            o.force_english_keyboard = true;
            stage = 7;
        } else if ((stage == 6 || stage == 7) && !strcmp(ty, "Replace") && pr && !strcmp(pr, " ") &&
                   content && !strcmp(content, "\xE4\xB8\x80")) {
            o.whitespace_escape = true;
            stage = 8;
        } else
            goto bad;
    }
    if (stage < 6) goto bad;
    if (o.strip_accents && stage >= 3) {
        /* NFD without StripAccents is not a setting of the reference */
    }
    t->norm_kind = TOK_NORM_CRAM;
    t->norm = o;
    return TOK_OK;
bad:
    tok_errf(err,
             "tokenizer.json: unsupported normalizer (cram implements the reference's sequence and "
             "BertNormalizer)");
    return TOK_EFORMAT;
}

static int parse_post(tok_tokenizer *t, const cJSON *p, char *err) {
    t->include_cls = t->include_sep = t->use_type_ids = false;
    if (!p || cJSON_IsNull(p)) return TOK_OK;
    const char *type = jstr(p, "type");
    if (type && !strcmp(type, "BertProcessing")) {
        t->include_cls = t->include_sep = t->use_type_ids = true;
        return TOK_OK;
    }
    if (!type || strcmp(type, "TemplateProcessing")) {
        tok_errf(err, "tokenizer.json: unsupported post_processor");
        return TOK_EFORMAT;
    }
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(p, "single");
    const cJSON *pair = cJSON_GetObjectItemCaseSensitive(p, "pair");
    if (!cJSON_IsArray(single) || !cJSON_IsArray(pair)) {
        tok_errf(err, "tokenizer.json: TemplateProcessing without single/pair");
        return TOK_EFORMAT;
    }
    int32_t cls = t->special[TOK_CLS], sep = t->special[TOK_SEP];
    bool seen_seq = false;
    const cJSON *it;
    cJSON_ArrayForEach(it, single) {
        const cJSON *sp = cJSON_GetObjectItemCaseSensitive(it, "SpecialToken");
        const cJSON *sq = cJSON_GetObjectItemCaseSensitive(it, "Sequence");
        if (sq) {
            seen_seq = true;
            continue;
        }
        const char *id = sp ? jstr(sp, "id") : NULL;
        int32_t tid = id ? tok_token_to_id(t, id, strlen(id)) : -1;
        if (tid >= 0 && tid == cls && !seen_seq)
            t->include_cls = true;
        else if (tid >= 0 && tid == sep && seen_seq)
            t->include_sep = true;
        else {
            tok_errf(err,
                     "tokenizer.json: unsupported single template (cram supports [cls] $A [sep])");
            return TOK_EFORMAT;
        }
    }
    cJSON_ArrayForEach(it, pair) {
        const cJSON *sq = cJSON_GetObjectItemCaseSensitive(it, "Sequence");
        const char *id = sq ? jstr(sq, "id") : NULL;
        const cJSON *ty = sq ? cJSON_GetObjectItemCaseSensitive(sq, "type_id") : NULL;
        if (id && !strcmp(id, "B") && cJSON_IsNumber(ty) && ty->valueint == 1)
            t->use_type_ids = true;
    }
    return TOK_OK;
}

/* cJSON strings end at a NUL, so a token "\u0000" would be lost: before parsing, each escaped NUL
 * is rewritten as U+10FFFD (a private-use code point), and turned back into a NUL byte here. */
static const char nul_sentinel[] = "\xF4\x8F\xBF\xBD";

static char *json_token(const char *s, size_t *len) {
    size_t n = strlen(s);
    char *o = malloc(n + 1);
    if (!o) abort();
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (i + 4 <= n && !memcmp(s + i, nul_sentinel, 4)) {
            o[k++] = 0;
            i += 4;
        } else {
            o[k++] = s[i++];
        }
    }
    o[k] = 0;
    *len = k;
    return o;
}

/* The line of the text that holds the vocab entry "token": id, found by writing the token the way
 * tok_save does (the same escapes as HF's writer for every token that has no control character);
 * 0 when it is not found. */
static size_t json_entry_line(const char *text, size_t len, const char *tok, uint32_t tlen,
                              int32_t id) {
    tok_strbuf key = {0};
    json_str(&key, tok, tlen);
    size_t line = 0;
    const char *at = text, *end = text + len;
    while (!line && key.n && at < end) {
        const char *hit = memmem(at, (size_t)(end - at), key.v, key.n);
        if (!hit) break;
        const char *q = hit + key.n;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
            q++;
        if (q < end && *q == ':') {
            q++;
            while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
                q++;
            long v = 0;
            const char *d = q;
            while (q < end && *q >= '0' && *q <= '9' && v < 1000000000L)
                v = v * 10 + (*q++ - '0');
            if (q > d && v == id && (q == end || *q < '0' || *q > '9')) {
                line = 1;
                for (const char *c = text; c < hit; c++)
                    line += *c == '\n';
            }
        }
        at = hit + 1;
    }
    free(key.v);
    return line;
}

static int vocab_from_json(tok_tokenizer *t, const cJSON *vocab, const char *text, size_t len,
                           char *err) {
    int n = cJSON_GetArraySize(vocab);
    if (n <= 0) {
        tok_errf(err, "tokenizer.json: empty model.vocab");
        return TOK_EFORMAT;
    }
    const char **toks = calloc((size_t)n, sizeof(char *));
    uint32_t *lens = calloc((size_t)n, sizeof(uint32_t));
    if (!toks || !lens) abort();
    int rc = TOK_OK;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= n ||
            it->valuedouble != (double)it->valueint) {
            tok_errf(err, "tokenizer.json: vocab id of \"%.40s\" is not an integer in [0, %d)",
                     it->string, n);
            rc = TOK_EFORMAT;
            break;
        }
        if (toks[it->valueint]) {
            tok_errf(err, "tokenizer.json: vocab id %d appears twice", it->valueint);
            rc = TOK_EFORMAT;
            break;
        }
        size_t l;
        toks[it->valueint] = json_token(it->string, &l);
        lens[it->valueint] = (uint32_t)l;
    }
    for (int i = 0; rc == TOK_OK && i < n; i++)
        if (!toks[i]) {
            tok_errf(err, "tokenizer.json: vocab id %d is missing", i);
            rc = TOK_EFORMAT;
        }
    int32_t first = -1, dup = rc == TOK_OK ? first_duplicate(toks, lens, n, &first) : -1;
    if (dup >= 0) {
        char shown[64], where[64] = "";
        show_token(shown, sizeof shown, toks[dup], lens[dup]);
        size_t l1 = json_entry_line(text, len, toks[first], lens[first], first),
               l2 = json_entry_line(text, len, toks[dup], lens[dup], dup);
        if (l1 && l2) snprintf(where, sizeof where, " (lines %zu and %zu)", l1, l2);
        tok_errf(err,
                 "tokenizer.json: the token \"%s\" appears twice in model.vocab, with ids %d and "
                 "%d%s: each token must appear once",
                 shown, first, dup, where);
        rc = TOK_EFORMAT;
    }
    if (rc == TOK_OK) rc = tok_set_vocab(t, toks, lens, n, err);
    for (int i = 0; i < n; i++)
        free((char *)toks[i]);
    free(toks);
    free(lens);
    return rc;
}

static int merges_from_json(tok_tokenizer *t, const cJSON *merges, char *err) {
    int n = cJSON_GetArraySize(merges);
    t->merge_a = malloc(((size_t)n + 1) * sizeof(int32_t));
    t->merge_b = malloc(((size_t)n + 1) * sizeof(int32_t));
    if (!t->merge_a || !t->merge_b) abort();
    tok_map_init(&t->merges, (size_t)n + 1);
    t->n_merges = 0;
    const cJSON *it;
    tok_strbuf cat = {0};
    int rc = TOK_OK;
    cJSON_ArrayForEach(it, merges) {
        const char *a = NULL, *b = NULL;
        size_t al = 0, bl = 0;
        if (cJSON_IsString(it)) { /* "a b" */
            const char *sp = strchr(it->valuestring, ' ');
            if (sp) {
                a = it->valuestring;
                al = (size_t)(sp - a);
                b = sp + 1;
                bl = strlen(b);
            }
        } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 &&
                   cJSON_IsString(cJSON_GetArrayItem(it, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(it, 1))) {
            a = cJSON_GetArrayItem(it, 0)->valuestring;
            b = cJSON_GetArrayItem(it, 1)->valuestring;
            al = strlen(a);
            bl = strlen(b);
        }
        char *ca = NULL, *cb = NULL;
        if (a) {
            char *x = strndup(a, al), *y = strndup(b, bl);
            ca = json_token(x, &al);
            cb = json_token(y, &bl);
            free(x);
            free(y);
        }
        int32_t ia = a ? tok_token_to_id(t, ca, al) : -1, ib = b ? tok_token_to_id(t, cb, bl) : -1;
        cat.n = 0;
        if (a) tok_sb_put(&cat, ca, al), tok_sb_put(&cat, cb, bl);
        free(ca);
        free(cb);
        int32_t ic = (ia >= 0 && ib >= 0) ? tok_token_to_id(t, cat.v, cat.n) : -1;
        if (ic < 0) {
            tok_errf(err, "tokenizer.json: merge %d refers to tokens not in the vocabulary",
                     t->n_merges);
            rc = TOK_EFORMAT;
            break;
        }
        int64_t *v =
            tok_map_put(&t->merges, (((uint64_t)(uint32_t)ia << 32) | (uint32_t)ib) + 1, -1);
        if (*v == -1) *v = ((int64_t)t->n_merges << 32) | ic;
        t->merge_a[t->n_merges] = ia;
        t->merge_b[t->n_merges] = ib;
        t->n_merges++;
    }
    free(cat.v);
    return rc;
}

static bool has_nul_escape(const char *j, size_t n) {
    for (size_t i = 0; i + 6 <= n; i++) {
        if (j[i] != '\\') continue;
        if (j[i + 1] == 'u' && !memcmp(j + i + 2, "0000", 4)) return true;
        i++; /* skip the escaped character (handles "\\\\") */
    }
    return false;
}

int tok_load_tokenizer_json_mem(tok_tokenizer **out, const char *json, size_t len, char *err) {
    *out = NULL;
    char *copy = NULL;
    const char *text = json; /* as given: for line numbers in messages */
    size_t text_len = len;
    if (has_nul_escape(json, len)) {
        if (memmem(json, len, nul_sentinel, 4) || memmem(json, len, "\\udbff\\udffd", 12)) {
            tok_errf(
                err,
                "tokenizer.json: holds both U+0000 and U+10FFFD, which cram cannot tell apart");
            return TOK_EFORMAT;
        }
        tok_strbuf b = {0};
        tok_sb_reserve(&b, len * 2 + 1);
        for (size_t i = 0; i < len; i++) {
            if (json[i] == '\\' && i + 1 < len) {
                if (i + 6 <= len && json[i + 1] == 'u' && !memcmp(json + i + 2, "0000", 4)) {
                    tok_sb_put(&b, "\\udbff\\udffd", 12);
                    i += 5;
                } else {
                    tok_sb_put(&b, json + i, 2);
                    i++;
                }
            } else {
                tok_sb_putc(&b, json[i]);
            }
        }
        copy = b.v;
        json = copy;
        len = b.n;
    }
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        tok_errf(err, "tokenizer.json: not valid JSON (near byte %td)",
                 at && at >= json ? at - json : (ptrdiff_t)-1);
        free(copy);
        return TOK_EFORMAT;
    }
    free(copy);
    int rc = TOK_EFORMAT;
    tok_tokenizer *t = NULL;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const char *mtype = model ? jstr(model, "type") : NULL;
    const cJSON *vocab = model ? cJSON_GetObjectItemCaseSensitive(model, "vocab") : NULL;
    if (!mtype || !cJSON_IsObject(vocab)) {
        tok_errf(err, "tokenizer.json: missing model.type or model.vocab");
        goto done;
    }
    tok_options o;
    tok_options_default(&o);
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    const char *ptype = pre ? jstr(pre, "type") : NULL;
    if (!strcmp(mtype, "WordPiece")) {
        o.tokenizer = ptype && !strcmp(ptype, "BertPreTokenizer") ? "WordPieceBERT" : "WordPiece";
        if (!ptype || (strcmp(ptype, "BertPreTokenizer") && strcmp(ptype, "Whitespace"))) {
            tok_errf(err, "tokenizer.json: unsupported pre_tokenizer for WordPiece");
            goto done;
        }
    } else if (!strcmp(mtype, "BPE")) {
        o.tokenizer = "BPE";
        if (!ptype || strcmp(ptype, "ByteLevel") || !jtrue(pre, "add_prefix_space")) {
            tok_errf(err, "tokenizer.json: cram's BPE needs the ByteLevel pre_tokenizer with "
                          "add_prefix_space");
            goto done;
        }
    } else {
        tok_errf(err, "tokenizer.json: model type %s is not supported (WordPiece, BPE)", mtype);
        goto done;
    }
    rc = tok_create(&t, &o, err);
    if (rc) goto done;
    rc = parse_normalizer(t, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), err);
    if (rc) goto done;
    if (t->model == TOK_MODEL_WORDPIECE) {
        const char *prefix = jstr(model, "continuing_subword_prefix");
        if (prefix) {
            if (strlen(prefix) >= sizeof(t->prefix)) {
                tok_errf(err, "tokenizer.json: continuing_subword_prefix too long");
                rc = TOK_EFORMAT;
                goto done;
            }
            snprintf(t->prefix, sizeof(t->prefix), "%s", prefix);
            t->prefix_len = (int)strlen(prefix);
        }
        const cJSON *mc = cJSON_GetObjectItemCaseSensitive(model, "max_input_chars_per_word");
        if (cJSON_IsNumber(mc) && mc->valuedouble >= 0 && mc->valuedouble < 1e9)
            t->max_input_chars = mc->valueint;
    }
    rc = vocab_from_json(t, vocab, text, text_len, err);
    if (rc) goto done;
    if (t->model == TOK_MODEL_WORDPIECE) {
        const char *unk = jstr(model, "unk_token");
        int32_t uid = unk ? tok_token_to_id(t, unk, strlen(unk)) : -1;
        if (uid < 0) {
            tok_errf(err, "tokenizer.json: WordPiece unk_token missing from the vocabulary");
            rc = TOK_EFORMAT;
            goto done;
        }
        t->special[TOK_UNK] = uid;
    } else {
        const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
        if (!cJSON_IsArray(merges)) {
            tok_errf(err, "tokenizer.json: BPE without merges");
            rc = TOK_EFORMAT;
            goto done;
        }
        rc = merges_from_json(t, merges, err);
        if (rc) goto done;
    }
    /* added tokens: the special ones are matched in raw text */
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (cJSON_IsArray(added)) {
        t->n_added = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, added) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
            const char *content = jstr(it, "content");
            if (jtrue(it, "lstrip") || jtrue(it, "rstrip") || jtrue(it, "single_word") ||
                jtrue(it, "normalized")) {
                tok_errf(err,
                         "tokenizer.json: added token \"%.40s\" uses "
                         "lstrip/rstrip/single_word/normalized, "
                         "which cram does not implement",
                         content ? content : "?");
                rc = TOK_EFORMAT;
                goto done;
            }
            size_t cl = 0;
            char *c = content ? json_token(content, &cl) : NULL;
            bool ok = cJSON_IsNumber(id) && c && id->valueint >= 0 && id->valueint < t->n_vocab &&
                      t->tok_len[id->valueint] == cl && !memcmp(t->tok[id->valueint], c, cl);
            free(c);
            if (!ok) {
                tok_errf(err, "tokenizer.json: added token does not match the vocabulary");
                rc = TOK_EFORMAT;
                goto done;
            }
            if (t->n_added < TOK_MAX_ADDED) t->added[t->n_added++] = id->valueint;
        }
    }
    rc = parse_post(t, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), err);
done:
    cJSON_Delete(root);
    if (rc) {
        tok_free(t);
        return rc;
    }
    *out = t;
    return TOK_OK;
}

static void read_config_extras(tok_tokenizer *t, const char *dir) {
    char path[CORE_PATH_MAX];
    char *buf = NULL;
    size_t n = 0;
    core_path_join(path, sizeof(path), dir, "tokenizer_config.json");
    if (core_read_file(path, &buf, &n, NULL, 0) != 0) return;
    cJSON *root = cJSON_ParseWithLength(buf, n);
    free(buf);
    if (!root) return;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model_max_length");
    if (cJSON_IsNumber(m) && m->valuedouble > 0 && m->valuedouble < 1e9)
        t->model_max_length = m->valueint;
    cJSON_Delete(root);
}

/* tokenizer_config.json has the key tok_save writes ("cram_tokenizer"). */
static bool written_by_cram(const char *dir) {
    char path[CORE_PATH_MAX];
    char *buf = NULL;
    size_t n = 0;
    core_path_join(path, sizeof(path), dir, "tokenizer_config.json");
    if (core_read_file(path, &buf, &n, NULL, 0) != 0) return false;
    cJSON *root = cJSON_ParseWithLength(buf, n);
    free(buf);
    bool yes = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "cram_tokenizer"));
    cJSON_Delete(root);
    return yes;
}

int tok_load(tok_tokenizer **out, const char *path, char *err) {
    char p[CORE_PATH_MAX], e[TOK_ERRLEN] = {0};
    *out = NULL;
    if (!path) {
        tok_errf(err, "tok_load: NULL path");
        return TOK_EINVAL;
    }
    bool dir = core_is_dir(path), json;
    if (dir) {
        core_path_join(p, sizeof(p), path, "tokenizer.json");
        json = access(p, F_OK) == 0;
        if (!json && written_by_cram(path)) {
            /* tok_save always writes tokenizer.json; vocab.txt alone would load with BERT's
             * rules, which is another tokenizer than the one saved */
            tok_errf(err,
                     "%s has no tokenizer.json, but its tokenizer_config.json says cram wrote it: "
                     "vocab.txt alone would load as a different tokenizer (BERT's rules); restore "
                     "tokenizer.json",
                     path);
            return TOK_EFORMAT;
        }
        if (!json) core_path_join(p, sizeof(p), path, "vocab.txt");
        if (!json && access(p, F_OK) != 0) {
            tok_errf(err, "%s holds no tokenizer.json and no vocab.txt", path);
            return TOK_EIO;
        }
    } else {
        snprintf(p, sizeof(p), "%s", path);
        size_t l = strlen(p);
        json = l >= 5 && !strcmp(p + l - 5, ".json");
    }
    char *buf = NULL;
    size_t n = 0;
    if (core_read_file(p, &buf, &n, e, sizeof(e)) != 0) {
        tok_errf(err, "cannot read %s: %s", p, e);
        return TOK_EIO;
    }
    char e2[TOK_ERRLEN] = "";
    int rc = json ? tok_load_tokenizer_json_mem(out, buf, n, e2)
                  : tok_load_vocab_txt_mem(out, buf, n, NULL, e2);
    free(buf);
    if (rc != TOK_OK) { /* name the file */
        const char *m = e2;
        if (!strncmp(m, "tokenizer.json: ", 16)) m += 16;
        tok_errf(err, "%s: %s", p, m);
    }
    if (rc == TOK_OK && dir) read_config_extras(*out, path);
    return rc;
}
