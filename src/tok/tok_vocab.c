/* tok vocabulary and models: the token table, string->id hash, the byte trie that drives greedy
 * longest-match-first WordPiece, and byte-level BPE merging. */
#include "tok/tok_internal.h"

#include <stdlib.h>
#include <string.h>

static const char *const role_names[TOK_NROLES][2] = {
    {"<pad>", "[PAD]"}, {"<s>", NULL},      {"</s>", NULL},       {"<unk>", "[UNK]"},
    {"<cls>", "[CLS]"}, {"<sep>", "[SEP]"}, {"<mask>", "[MASK]"},
};

void tok_options_default(tok_options *o) {
    memset(o, 0, sizeof(*o));
    o->tokenizer = "WordPiece";
    o->normalizer.force_lowercase = true;
    o->normalizer.strip_accents = true;
    o->normalizer.force_english_keyboard = true;
    o->normalizer.whitespace_escape = false;
    o->vocab_size = 32768;
    o->include_cls_token_in_corpus = false;
    o->include_sep_token_in_corpus = true;
    o->use_type_ids = false;
    o->seq_length = 128;
    o->threads = 0;
}

int tok_create(tok_tokenizer **out, const tok_options *o, char *err) {
    *out = NULL;
    tok_options def;
    if (!o) {
        tok_options_default(&def);
        o = &def;
    }
    tok_tokenizer *t = calloc(1, sizeof(*t));
    if (!t) {
        tok_errf(err, "out of memory");
        return TOK_EIO;
    }
    const char *kind = o->tokenizer ? o->tokenizer : "WordPiece";
    if (!strcmp(kind, "WordPiece")) {
        t->model = TOK_MODEL_WORDPIECE;
        t->norm_kind = TOK_NORM_CRAM;
        t->pre = TOK_PRE_WHITESPACE;
    } else if (!strcmp(kind, "WordPieceBERT")) {
        t->model = TOK_MODEL_WORDPIECE;
        t->norm_kind = TOK_NORM_BERT;
        t->pre = TOK_PRE_BERT;
    } else if (!strcmp(kind, "BPE")) {
        t->model = TOK_MODEL_BPE;
        t->norm_kind = TOK_NORM_CRAM;
        t->pre = TOK_PRE_BYTELEVEL;
    } else {
        tok_errf(err, "unknown tokenizer '%s' (expected WordPiece, WordPieceBERT or BPE)", kind);
        free(t);
        return TOK_EINVAL;
    }
    snprintf(t->kind_name, sizeof(t->kind_name), "%s", kind);
    t->norm = o->normalizer;
    t->include_cls = o->include_cls_token_in_corpus;
    t->include_sep = o->include_sep_token_in_corpus;
    t->use_type_ids = o->use_type_ids;
    t->model_max_length = o->seq_length > 0 ? o->seq_length : 512;
    t->threads = o->threads;
    memcpy(t->prefix, "##", 3);
    t->prefix_len = 2;
    t->max_input_chars = 100;
    t->cont_node = -1;
    for (int r = 0; r < TOK_NROLES; r++)
        t->special[r] = -1;
    *out = t;
    return TOK_OK;
}

static void free_vocab(tok_tokenizer *t) {
    free(t->tok);
    free(t->tok_len);
    free(t->arena);
    free(t->trie_id);
    tok_map_free(&t->str2id);
    tok_map_free(&t->trie_edges);
    t->tok = NULL;
    t->tok_len = NULL;
    t->arena = NULL;
    t->trie_id = NULL;
    t->n_vocab = t->n_nodes = t->cap_nodes = 0;
}

void tok_free(tok_tokenizer *t) {
    if (!t) return;
    free_vocab(t);
    tok_map_free(&t->merges);
    free(t->merge_a);
    free(t->merge_b);
    free(t);
}

static uint64_t str_key(const char *s, size_t n) {
    return tok_hash_bytes(s, n) | 1;
}

int32_t tok_token_to_id(const tok_tokenizer *t, const char *s, size_t n) {
    int64_t *v = tok_map_get(&t->str2id, str_key(s, n));
    if (!v) return -1;
    int32_t id = (int32_t)*v;
    if (t->tok_len[id] != n || memcmp(t->tok[id], s, n)) return -1;
    return id;
}

int32_t tok_vocab_size(const tok_tokenizer *t) {
    return t ? t->n_vocab : 0;
}
tok_model_kind tok_model(const tok_tokenizer *t) {
    return t->model;
}
int32_t tok_special_id(const tok_tokenizer *t, tok_role r) {
    return (r >= 0 && r < TOK_NROLES) ? t->special[r] : -1;
}

const char *tok_id_to_token(const tok_tokenizer *t, int32_t id, uint32_t *len) {
    if (!t || id < 0 || id >= t->n_vocab) return NULL;
    if (len) *len = t->tok_len[id];
    return t->tok[id];
}

static int32_t trie_child(const tok_tokenizer *t, int32_t node, uint8_t b) {
    int64_t *v = tok_map_get(&t->trie_edges, (((uint64_t)node << 8) | b) + 1);
    return v ? (int32_t)*v : -1;
}

static int32_t trie_add(tok_tokenizer *t, int32_t node, uint8_t b) {
    int64_t *v = tok_map_put(&t->trie_edges, (((uint64_t)node << 8) | b) + 1, -1);
    if (*v >= 0) return (int32_t)*v;
    if (t->n_nodes == t->cap_nodes) {
        t->cap_nodes = t->cap_nodes ? t->cap_nodes * 2 : 1024;
        int32_t *p = realloc(t->trie_id, (size_t)t->cap_nodes * sizeof(int32_t));
        if (!p) abort();
        t->trie_id = p;
    }
    t->trie_id[t->n_nodes] = -1;
    *v = t->n_nodes;
    return t->n_nodes++;
}

static uint64_t next_uid = 1;

int tok_index_vocab(tok_tokenizer *t, char *err) {
    tok_map_free(&t->str2id);
    tok_map_free(&t->trie_edges);
    tok_map_init(&t->str2id, (size_t)t->n_vocab + 1);
    for (int32_t i = 0; i < t->n_vocab; i++) {
        int64_t *v = tok_map_put(&t->str2id, str_key(t->tok[i], t->tok_len[i]), i);
        *v = i; /* a repeated string maps to its last id, as HF's vocab map does */
    }
    for (int r = 0; r < TOK_NROLES; r++) {
        t->special[r] = -1;
        for (int k = 0; k < 2 && t->special[r] < 0; k++)
            if (role_names[r][k])
                t->special[r] = tok_token_to_id(t, role_names[r][k], strlen(role_names[r][k]));
    }
    t->n_added = 0;
    for (int r = 0; r < TOK_NROLES; r++) {
        if (t->special[r] < 0) continue;
        bool dup = false;
        for (int k = 0; k < t->n_added; k++)
            dup |= t->added[k] == t->special[r];
        if (!dup) t->added[t->n_added++] = t->special[r];
    }
    if (t->model == TOK_MODEL_WORDPIECE) {
        t->n_nodes = 0;
        tok_map_init(&t->trie_edges, (size_t)t->n_vocab * 4 + 16);
        t->cap_nodes = 1024;
        free(t->trie_id);
        t->trie_id = malloc((size_t)t->cap_nodes * sizeof(int32_t));
        if (!t->trie_id) abort();
        t->trie_id[0] = -1; /* node 0 is the root */
        t->n_nodes = 1;
        for (int32_t i = 0; i < t->n_vocab; i++) {
            int32_t node = 0;
            for (uint32_t k = 0; k < t->tok_len[i]; k++)
                node = trie_add(t, node, (uint8_t)t->tok[i][k]);
            if (node > 0) t->trie_id[node] = i;
        }
        t->cont_node = 0;
        for (int k = 0; k < t->prefix_len && t->cont_node >= 0; k++)
            t->cont_node = trie_child(t, t->cont_node, (uint8_t)t->prefix[k]);
    }
    t->uid = __atomic_fetch_add(&next_uid, 1, __ATOMIC_RELAXED);
    (void)err;
    return TOK_OK;
}

int tok_set_vocab(tok_tokenizer *t, const char *const *tokens, const uint32_t *lens, int32_t n,
                  char *err) {
    if (!t || (n > 0 && (!tokens || !lens)) || n < 0) {
        tok_errf(err, "tok_set_vocab: bad arguments");
        return TOK_EINVAL;
    }
    size_t total = 0;
    for (int32_t i = 0; i < n; i++)
        total += lens[i] + 1;
    free_vocab(t);
    t->tok = malloc(((size_t)n + 1) * sizeof(char *));
    t->tok_len = malloc(((size_t)n + 1) * sizeof(uint32_t));
    t->arena = malloc(total + 1);
    if (!t->tok || !t->tok_len || !t->arena) {
        tok_errf(err, "out of memory for a vocabulary of %d tokens", n);
        return TOK_EIO;
    }
    char *p = t->arena;
    for (int32_t i = 0; i < n; i++) {
        memcpy(p, tokens[i], lens[i]);
        p[lens[i]] = 0;
        t->tok[i] = p;
        t->tok_len[i] = lens[i];
        p += lens[i] + 1;
    }
    t->n_vocab = n;
    return tok_index_vocab(t, err);
}

/* ---------------- WordPiece: greedy longest match first ---------------- */
void tok_wordpiece_word(const tok_tokenizer *t, const char *w, size_t n, tok_encoding *e) {
    int32_t unk = t->special[TOK_UNK];
    if (tok_utf8_count(w, n) > (size_t)t->max_input_chars) {
        if (unk >= 0) tok_enc_push(e, unk, 0);
        return;
    }
    int32_t mark = e->n;
    const uint8_t *u = (const uint8_t *)w;
    size_t start = 0;
    while (start < n) {
        int32_t node = start == 0 ? 0 : t->cont_node;
        int32_t best = -1;
        size_t best_end = 0;
        for (size_t i = start; i < n && node >= 0; i++) {
            node = trie_child(t, node, u[i]);
            if (node < 0) break;
            int32_t id = t->trie_id[node];
            if (id >= 0 && (i + 1 == n || (u[i + 1] & 0xC0) != 0x80)) {
                best = id;
                best_end = i + 1;
            }
        }
        if (best < 0) { /* no piece matches: the whole word is unknown */
            e->n = mark;
            if (unk >= 0) tok_enc_push(e, unk, 0);
            return;
        }
        tok_enc_push(e, best, 0);
        start = best_end;
    }
}

/* ---------------- BPE: apply merges by rank (heap of candidate pairs) ---------------- */
typedef struct {
    int32_t id, prev, next;
} bpe_sym;
typedef struct {
    int32_t rank, pos;
} bpe_cand;

static bool cand_less(bpe_cand a, bpe_cand b) {
    return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos);
}

static void heap_push(bpe_cand *h, size_t *n, bpe_cand c) {
    size_t i = (*n)++;
    h[i] = c;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(h[i], h[p])) break;
        bpe_cand t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static bpe_cand heap_pop(bpe_cand *h, size_t *n) {
    bpe_cand top = h[0];
    h[0] = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < *n && cand_less(h[l], h[m])) m = l;
        if (r < *n && cand_less(h[r], h[m])) m = r;
        if (m == i) break;
        bpe_cand t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
    return top;
}

static bool merge_lookup(const tok_tokenizer *t, int32_t a, int32_t b, int32_t *rank, int32_t *id) {
    int64_t *v = tok_map_get(&t->merges, (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1);
    if (!v) return false;
    *rank = (int32_t)(*v >> 32);
    *id = (int32_t)(*v & 0xffffffff);
    return true;
}

void tok_bpe_word(const tok_tokenizer *t, const char *w, size_t n, tok_encoding *e) {
    bpe_sym *s = malloc((n + 1) * sizeof(bpe_sym));
    bpe_cand *h = malloc((3 * n + 4) * sizeof(bpe_cand));
    if (!s || !h) abort();
    int32_t m = 0;
    const uint8_t *u = (const uint8_t *)w;
    size_t i = 0;
    while (i < n) { /* each code point of the (byte-level mapped) word is one initial symbol */
        size_t p = i;
        tok_utf8_next(u, n, &i);
        int32_t id = tok_token_to_id(t, w + p, i - p);
        if (id < 0)
            continue; /* byte-level BPE has no unknown token: HF drops bytes missing from the vocab
                       */
        s[m].id = id;
        s[m].prev = m - 1;
        s[m].next = m + 1;
        m++;
    }
    if (m > 0) s[m - 1].next = -1;
    size_t hn = 0;
    for (int32_t k = 0; k + 1 < m; k++) {
        int32_t r, id;
        if (merge_lookup(t, s[k].id, s[k + 1].id, &r, &id)) heap_push(h, &hn, (bpe_cand){r, k});
    }
    while (hn) {
        bpe_cand c = heap_pop(h, &hn);
        int32_t a = c.pos, b = s[a].next;
        if (s[a].id < 0 || b < 0) continue;
        int32_t r, id;
        if (!merge_lookup(t, s[a].id, s[b].id, &r, &id) || r != c.rank) continue; /* stale */
        s[a].id = id;
        s[a].next = s[b].next;
        if (s[b].next >= 0) s[s[b].next].prev = a;
        s[b].id = -1;
        if (s[a].prev >= 0 && merge_lookup(t, s[s[a].prev].id, id, &r, &id))
            heap_push(h, &hn, (bpe_cand){r, s[a].prev});
        if (s[a].next >= 0 && merge_lookup(t, s[a].id, s[s[a].next].id, &r, &id))
            heap_push(h, &hn, (bpe_cand){r, a});
        if (hn + 2 >= 3 * n + 4) break; /* cannot happen: each merge pushes at most 2 */
    }
    for (int32_t k = 0; k >= 0 && k < m; k = s[k].next)
        tok_enc_push(e, s[k].id, 0);
    free(s);
    free(h);
}
