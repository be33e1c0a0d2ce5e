/* tok training: parallel word counting (normalize + pre-tokenize per document, per-thread maps
 * merged by hash shard), then the merge learner of Hugging Face's BpeTrainer, which its
 * WordPieceTrainer wraps: special tokens first, the alphabet by code point, "##"-continuation
 * symbols, then merges of the most frequent pair until the vocabulary is full. Every tie is broken
 * by token ids assigned in a fixed order, so the result does not depend on the thread count. */
#include "core/fileio.h"
#include "core/log.h"
#include "tok/tok_internal.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

void tok_normalize_into(tok_norm_kind kind, const tok_norm_opts *o, const char *text, size_t len,
                        tok_strbuf *out);

static const char *const cram_specials[TOK_NROLES] = {"<pad>", "<s>",   "</s>",  "<unk>",
                                                      "<cls>", "<sep>", "<mask>"};

/* ---------------- a string table: strings in one arena, an open-addressing index ----------------
 */
/* One slot holds the full hash, the entry and its count, so counting a known word touches one cache
 * line of the index and one of the arena (the string compare). */
typedef struct {
    uint64_t hash; /* 0 = empty */
    uint32_t idx, len;
    int64_t count;
} st_slot;

typedef struct {
    tok_strbuf arena;
    size_t *off;    /* (n) */
    uint32_t *len;  /* (n) */
    int64_t *count; /* (n) after st_collect_counts */
    size_t n, cap;
    st_slot *slots;
    size_t nslots; /* power of two */
} strtab;

static void st_free(strtab *s) {
    free(s->arena.v);
    free(s->off);
    free(s->len);
    free(s->count);
    free(s->slots);
    memset(s, 0, sizeof(*s));
}

static const char *st_str(const strtab *s, size_t i) {
    return s->arena.v + s->off[i];
}

static void st_grow(strtab *s) {
    size_t ns = s->nslots ? s->nslots * 2 : 4096;
    st_slot *sl = calloc(ns, sizeof(st_slot));
    if (!sl) abort();
    for (size_t i = 0; i < s->nslots; i++) {
        if (!s->slots[i].hash) continue;
        size_t j = s->slots[i].hash & (ns - 1);
        while (sl[j].hash)
            j = (j + 1) & (ns - 1);
        sl[j] = s->slots[i];
    }
    free(s->slots);
    s->slots = sl;
    s->nslots = ns;
}

/* the slot of string w (hash h), inserted with count 0 if absent and insert is set */
static st_slot *st_slot_for(strtab *s, const char *w, size_t n, uint64_t h, bool insert) {
    h = tok_mix64(h) | 1;
    if (insert && (s->n + 1) * 2 > s->nslots) st_grow(s);
    if (!s->nslots) return NULL;
    size_t mask = s->nslots - 1, i = h & mask;
    for (;;) {
        st_slot *q = &s->slots[i];
        if (q->hash == 0) break;
        if (q->hash == h && q->len == n && memcmp(s->arena.v + s->off[q->idx], w, n) == 0) return q;
        i = (i + 1) & mask;
    }
    if (!insert) return NULL;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->off = realloc(s->off, s->cap * sizeof(size_t));
        s->len = realloc(s->len, s->cap * sizeof(uint32_t));
        if (!s->off || !s->len) abort();
    }
    s->off[s->n] = s->arena.n;
    s->len[s->n] = (uint32_t)n;
    tok_sb_put(&s->arena, w, n);
    tok_sb_putc(&s->arena, 0);
    st_slot *q = &s->slots[i];
    q->hash = h;
    q->idx = (uint32_t)s->n++;
    q->len = (uint32_t)n;
    q->count = 0;
    return q;
}

static size_t st_intern(strtab *s, const char *w, size_t n, uint64_t h) {
    return st_slot_for(s, w, n, h, true)->idx;
}

static int64_t st_find(const strtab *s, const char *w, size_t n) {
    st_slot *q = st_slot_for((strtab *)s, w, n, tok_hash_bytes(w, n), false);
    return q ? (int64_t)q->idx : -1;
}

static void st_collect_counts(strtab *s) {
    free(s->count);
    s->count = calloc(s->n + 1, sizeof(int64_t));
    if (!s->count) abort();
    for (size_t i = 0; i < s->nslots; i++)
        if (s->slots[i].hash) s->count[s->slots[i].idx] = s->slots[i].count;
}

/* ---------------- word counting ---------------- */
typedef struct {
    strtab *tab;
    const tok_tokenizer *t;
    tok_strbuf mapped;
} count_ctx;

static void count_word(void *ctx, const char *w, size_t n) {
    count_ctx *c = ctx;
    if (c->t->pre == TOK_PRE_BYTELEVEL) { /* the trainer sees byte-level mapped pre-tokens */
        c->mapped.n = 0;
        for (size_t i = 0; i < n; i++)
            tok_sb_put_cp(&c->mapped, tok_byte_to_cp((uint8_t)w[i]));
        w = c->mapped.v;
        n = c->mapped.n;
    }
    st_slot_for(c->tab, w, n, tok_hash_bytes(w, n), true)->count++;
}

static void count_doc(const tok_tokenizer *t, const char *d, size_t len, count_ctx *c,
                      tok_strbuf *norm, tok_strbuf *pre) {
    norm->n = 0;
    tok_normalize_into(t->norm_kind, &t->norm, d, len, norm);
    const char *s = norm->v;
    size_t n = norm->n;
    if (t->pre == TOK_PRE_BYTELEVEL && n > 0 && s[0] != ' ') {
        pre->n = 0;
        tok_sb_putc(pre, ' ');
        tok_sb_put(pre, s, n);
        s = pre->v;
        n = pre->n;
    }
    tok_pretokenize(t->pre, s, n, count_word, c);
}

static int cmp_word(const void *a, const void *b, void *ctx) {
    const strtab *s = ctx;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    uint32_t li = s->len[i], lj = s->len[j];
    int c = memcmp(st_str(s, i), st_str(s, j), li < lj ? li : lj);
    if (c) return c;
    return (li > lj) - (li < lj);
}

/* ---------------- the merge learner ---------------- */
typedef struct {
    int64_t count;
    uint32_t a, b;
    uint64_t seq; /* insertion order: a fixed tie-break for entries of equal count and pair */
    int32_t *pos;
    int32_t npos;
} merge_ent;

typedef struct {
    merge_ent *v;
    size_t n, cap;
} merge_heap;

static bool ent_before(const merge_ent *x, const merge_ent *y) {
    if (x->count != y->count) return x->count > y->count;
    if (x->a != y->a) return x->a < y->a;
    if (x->b != y->b) return x->b < y->b;
    return x->seq < y->seq;
}

static void mh_push(merge_heap *h, merge_ent e) {
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 1024;
        h->v = realloc(h->v, h->cap * sizeof(merge_ent));
        if (!h->v) abort();
    }
    size_t i = h->n++;
    h->v[i] = e;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ent_before(&h->v[i], &h->v[p])) break;
        merge_ent t = h->v[i];
        h->v[i] = h->v[p];
        h->v[p] = t;
        i = p;
    }
}

static merge_ent mh_pop(merge_heap *h) {
    merge_ent top = h->v[0];
    h->v[0] = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && ent_before(&h->v[l], &h->v[m])) m = l;
        if (r < h->n && ent_before(&h->v[r], &h->v[m])) m = r;
        if (m == i) break;
        merge_ent t = h->v[i];
        h->v[i] = h->v[m];
        h->v[m] = t;
        i = m;
    }
    return top;
}

/* pair (a, b) -> slot with count and the word indices that gained it since the last drain */
typedef struct {
    int64_t count;
    int32_t *upd;
    int32_t nupd, capupd;
    bool in_upd_list;
} pair_info;

typedef struct {
    tok_map map; /* (a << 32 | b) + 1 -> index into pairs */
    pair_info *pairs;
    uint64_t *keys;
    size_t n, cap;
    size_t *upd_list; /* pairs with pending positions, in first-touch order */
    size_t nupd_list, capupd_list;
} pair_table;

static size_t pt_get(pair_table *p, uint32_t a, uint32_t b) {
    uint64_t key = (((uint64_t)a << 32) | b) + 1;
    int64_t *v = tok_map_put(&p->map, key, -1);
    if (*v < 0) {
        if (p->n == p->cap) {
            p->cap = p->cap ? p->cap * 2 : 4096;
            p->pairs = realloc(p->pairs, p->cap * sizeof(pair_info));
            p->keys = realloc(p->keys, p->cap * sizeof(uint64_t));
            if (!p->pairs || !p->keys) abort();
        }
        memset(&p->pairs[p->n], 0, sizeof(pair_info));
        p->keys[p->n] = key - 1;
        *v = (int64_t)p->n++;
    }
    return (size_t)*v;
}

static void pt_add_pos(pair_table *p, size_t i, int32_t w) {
    pair_info *q = &p->pairs[i];
    if (q->nupd && q->upd[q->nupd - 1] == w) return; /* a set: one word is visited at a time */
    if (q->nupd == q->capupd) {
        q->capupd = q->capupd ? q->capupd * 2 : 4;
        q->upd = realloc(q->upd, (size_t)q->capupd * sizeof(int32_t));
        if (!q->upd) abort();
    }
    q->upd[q->nupd++] = w;
    if (!q->in_upd_list) {
        q->in_upd_list = true;
        if (p->nupd_list == p->capupd_list) {
            p->capupd_list = p->capupd_list ? p->capupd_list * 2 : 1024;
            p->upd_list = realloc(p->upd_list, p->capupd_list * sizeof(size_t));
            if (!p->upd_list) abort();
        }
        p->upd_list[p->nupd_list++] = i;
    }
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* move every pending position set into the queue (as HF drains where_to_update) */
static void pt_drain(pair_table *p, merge_heap *h, uint64_t *seq) {
    for (size_t k = 0; k < p->nupd_list; k++) {
        pair_info *q = &p->pairs[p->upd_list[k]];
        q->in_upd_list = false;
        if (q->count > 0) {
            qsort(q->upd, (size_t)q->nupd, sizeof(int32_t), cmp_i32);
            uint64_t key = p->keys[p->upd_list[k]];
            merge_ent e = {q->count, (uint32_t)(key >> 32), (uint32_t)key, (*seq)++, q->upd,
                           q->nupd};
            mh_push(h, e);
        } else {
            free(q->upd);
        }
        q->upd = NULL;
        q->nupd = q->capupd = 0;
    }
    p->nupd_list = 0;
}

typedef struct {
    strtab vocab; /* token strings; entry index = id */
    const char *prefix;
    size_t prefix_len;
    const char *const *cont_order;
    int n_cont_order;
} learner;

static int32_t add_token(strtab *v, const char *s, size_t n) {
    return (int32_t)st_intern(v, s, n, tok_hash_bytes(s, n));
}

typedef struct {
    int32_t *sym;   /* all words' symbols */
    size_t *start;  /* (n_words) */
    int32_t *len;   /* (n_words) current symbol count */
    int64_t *count; /* (n_words) */
    size_t n_words;
} word_set;

/* Merge (a, b) -> r in word w, reporting pair changes the way HF's Word::merge does. */
static void word_merge(word_set *ws, int32_t w, int32_t a, int32_t b, int32_t r, pair_table *pt) {
    int32_t *s = ws->sym + ws->start[w];
    int32_t n = ws->len[w];
    int64_t c = ws->count[w];
    int32_t i = 0;
    while (i < n) {
        if (s[i] == a && i + 1 < n && s[i + 1] == b) {
            if (i > 0) {
                pt->pairs[pt_get(pt, (uint32_t)s[i - 1], (uint32_t)a)].count -= c;
                size_t k = pt_get(pt, (uint32_t)s[i - 1], (uint32_t)r);
                pt->pairs[k].count += c;
                pt_add_pos(pt, k, w);
            }
            s[i] = r;
            memmove(s + i + 1, s + i + 2, (size_t)(n - i - 2) * sizeof(int32_t));
            n--;
            if (i < n - 1) {
                pt->pairs[pt_get(pt, (uint32_t)b, (uint32_t)s[i + 1])].count -= c;
                size_t k = pt_get(pt, (uint32_t)r, (uint32_t)s[i + 1]);
                pt->pairs[k].count += c;
                pt_add_pos(pt, k, w);
            }
        }
        i++;
    }
    ws->len[w] = n;
}

static int learn(learner *L, const strtab *words, const size_t *order, int vocab_size,
                 int64_t min_freq, int32_t **merge_pairs, int32_t *n_merge_pairs) {
    strtab *V = &L->vocab;
    /* alphabet: every code point of the words, sorted */
    tok_map seen = {0};
    tok_map cont = {0};
    tok_map_init(&seen, 1024);
    tok_map_init(&cont, 1024);
    size_t total_syms = 0;
    for (size_t k = 0; k < words->n; k++) {
        const uint8_t *u = (const uint8_t *)st_str(words, k);
        size_t n = words->len[k], i = 0;
        bool first = true;
        while (i < n) {
            int32_t c = tok_utf8_next(u, n, &i);
            tok_map_put(&seen, (uint64_t)c + 1, 0);
            if (!first) tok_map_put(&cont, (uint64_t)c + 1, 0);
            first = false;
            total_syms++;
        }
    }
    int32_t *chars = malloc((seen.n + 1) * sizeof(int32_t));
    size_t nc = 0;
    for (size_t i = 0; i < seen.cap; i++)
        if (seen.keys[i]) chars[nc++] = (int32_t)(seen.keys[i] - 1);
    qsort(chars, nc, sizeof(int32_t), cmp_i32);
    char buf[32];
    for (size_t i = 0; i < nc; i++)
        add_token(V, buf, (size_t)tok_utf8_put(buf, chars[i]));
    if (L->prefix_len) { /* continuation symbols, in code point order (HF: order of a hash map walk)
                          */
        /* an explicit order (e.g. read off an HF vocabulary, to reproduce that run) goes first */
        for (int i = 0; i < L->n_cont_order; i++) {
            const char *c = L->cont_order[i];
            size_t l = strlen(c);
            if (l > L->prefix_len && !memcmp(c, L->prefix, L->prefix_len)) add_token(V, c, l);
        }
        for (size_t i = 0; i < nc; i++) {
            if (!tok_map_get(&cont, (uint64_t)chars[i] + 1)) continue;
            memcpy(buf, L->prefix, L->prefix_len);
            int l = tok_utf8_put(buf + L->prefix_len, chars[i]);
            add_token(V, buf, L->prefix_len + (size_t)l);
        }
    }
    free(chars);
    tok_map_free(&seen);
    tok_map_free(&cont);

    /* words as symbol ids, in sorted word order */
    word_set ws = {0};
    ws.n_words = words->n;
    ws.sym = malloc((total_syms + 1) * sizeof(int32_t));
    ws.start = malloc((ws.n_words + 1) * sizeof(size_t));
    ws.len = malloc((ws.n_words + 1) * sizeof(int32_t));
    ws.count = malloc((ws.n_words + 1) * sizeof(int64_t));
    if (!ws.sym || !ws.start || !ws.len || !ws.count) abort();
    size_t at = 0;
    for (size_t k = 0; k < words->n; k++) {
        size_t wi = order[k];
        const uint8_t *u = (const uint8_t *)st_str(words, wi);
        size_t n = words->len[wi], i = 0;
        ws.start[k] = at;
        ws.count[k] = words->count[wi];
        bool first = true;
        while (i < n) {
            size_t p = i;
            tok_utf8_next(u, n, &i);
            size_t l = 0;
            if (!first && L->prefix_len) {
                memcpy(buf, L->prefix, L->prefix_len);
                l = L->prefix_len;
            }
            memcpy(buf + l, u + p, i - p);
            l += i - p;
            ws.sym[at++] = (int32_t)st_find(V, buf, l);
            first = false;
        }
        ws.len[k] = (int32_t)(at - ws.start[k]);
    }

    /* pair counts and positions */
    pair_table pt = {0};
    tok_map_init(&pt.map, total_syms / 2 + 1024);
    for (size_t k = 0; k < ws.n_words; k++) {
        const int32_t *s = ws.sym + ws.start[k];
        for (int32_t i = 0; i + 1 < ws.len[k]; i++) {
            size_t q = pt_get(&pt, (uint32_t)s[i], (uint32_t)s[i + 1]);
            pt.pairs[q].count += ws.count[k];
            pt_add_pos(&pt, q, (int32_t)k);
        }
    }
    merge_heap heap = {0};
    uint64_t seq = 0;
    pt_drain(&pt, &heap, &seq);

    size_t cap_m = 1024, nm = 0;
    int32_t *mp = malloc(cap_m * 3 * sizeof(int32_t));
    tok_strbuf nt = {0};
    while ((int64_t)V->n < vocab_size && heap.n) {
        merge_ent top = mh_pop(&heap);
        int64_t cur = pt.pairs[pt_get(&pt, top.a, top.b)].count;
        if (top.count != cur) {
            top.count = cur;
            mh_push(&heap, top);
            continue;
        }
        if (top.count < 1 || min_freq > top.count) {
            free(top.pos);
            break;
        }
        const char *sa = st_str(V, top.a), *sb = st_str(V, top.b);
        size_t la = V->len[top.a], lb = V->len[top.b];
        if (L->prefix_len && lb >= L->prefix_len && memcmp(sb, L->prefix, L->prefix_len) == 0) {
            sb += L->prefix_len;
            lb -= L->prefix_len;
        }
        nt.n = 0;
        tok_sb_put(&nt, sa, la);
        tok_sb_put(&nt, sb, lb);
        int32_t r = add_token(V, nt.v, nt.n);
        if (nm == cap_m) {
            cap_m *= 2;
            mp = realloc(mp, cap_m * 3 * sizeof(int32_t));
            if (!mp) abort();
        }
        mp[3 * nm] = (int32_t)top.a;
        mp[3 * nm + 1] = (int32_t)top.b;
        mp[3 * nm + 2] = r;
        nm++;
        for (int32_t k = 0; k < top.npos; k++)
            word_merge(&ws, top.pos[k], (int32_t)top.a, (int32_t)top.b, r, &pt);
        free(top.pos);
        pt_drain(&pt, &heap, &seq);
    }
    for (size_t k = 0; k < heap.n; k++)
        free(heap.v[k].pos);
    for (size_t k = 0; k < pt.n; k++)
        free(pt.pairs[k].upd);
    free(heap.v);
    free(pt.pairs);
    free(pt.keys);
    free(pt.upd_list);
    tok_map_free(&pt.map);
    free(ws.sym);
    free(ws.start);
    free(ws.len);
    free(ws.count);
    free(nt.v);
    *merge_pairs = mp;
    *n_merge_pairs = (int32_t)nm;
    return TOK_OK;
}

/* ---------------- public entry points ---------------- */
typedef struct {
    const char *const *docs;
    const size_t *lens;
    size_t n;
} doc_src;

static int train_impl(tok_tokenizer **out, const tok_options *o, doc_src src, char *err) {
    *out = NULL;
    tok_tokenizer *t;
    int rc = tok_create(&t, o, err);
    if (rc) return rc;
    if (o->vocab_size < TOK_NROLES + 1 || o->vocab_size > (1 << 30)) {
        tok_errf(err, "vocab_size %d out of range", o->vocab_size);
        tok_free(t);
        return TOK_EINVAL;
    }
    int nt = o->threads > 0 ? o->threads : omp_get_max_threads();
    /* 1. count words per thread */
    strtab *local = calloc((size_t)nt, sizeof(strtab));
    if (!local) abort();
#pragma omp parallel num_threads(nt)
    {
        int me = omp_get_thread_num();
        count_ctx c = {&local[me], t, {0}};
        tok_strbuf norm = {0}, pre = {0};
#pragma omp for schedule(dynamic, 256)
        for (size_t i = 0; i < src.n; i++)
            count_doc(t, src.docs[i], src.lens[i], &c, &norm, &pre);
        free(norm.v);
        free(pre.v);
        free(c.mapped.v);
    }
    /* 2. merge the per-thread tables (sum of counts: independent of how documents were split) */
    int real_threads = nt;
    strtab words = {0};
    for (int k = 0; k < real_threads; k++) {
        strtab *s = &local[k];
        for (size_t i = 0; i < s->nslots; i++) {
            const st_slot *q = &s->slots[i];
            if (!q->hash) continue;
            const char *w = st_str(s, q->idx);
            st_slot_for(&words, w, q->len, tok_hash_bytes(w, q->len), true)->count += q->count;
        }
        st_free(s);
    }
    st_collect_counts(&words);
    free(local);
    size_t *order = malloc((words.n + 1) * sizeof(size_t));
    for (size_t i = 0; i < words.n; i++)
        order[i] = i;
    qsort_r(order, words.n, sizeof(size_t), cmp_word, &words);

    /* 3. learn */
    learner L = {0};
    for (int r = 0; r < TOK_NROLES; r++)
        add_token(&L.vocab, cram_specials[r], strlen(cram_specials[r]));
    bool bpe = t->model == TOK_MODEL_BPE;
    L.prefix = bpe ? "" : t->prefix;
    L.prefix_len = bpe ? 0 : (size_t)t->prefix_len;
    L.cont_order = o->cont_symbol_order;
    L.n_cont_order = o->n_cont_symbol_order;
    int32_t *mp = NULL, nm = 0;
    learn(&L, &words, order, o->vocab_size, bpe ? 2 : 0, &mp, &nm);
    free(order);
    st_free(&words);

    /* 4. vocabulary (and BPE merges) into the tokenizer */
    const char **toks = malloc((L.vocab.n + 1) * sizeof(char *));
    for (size_t i = 0; i < L.vocab.n; i++)
        toks[i] = st_str(&L.vocab, i);
    rc = tok_set_vocab(t, toks, L.vocab.len, (int32_t)L.vocab.n, err);
    free(toks);
    if (rc == TOK_OK && bpe) {
        /* HF keeps one rank per pair: that of its last merge */
        tok_map last = {0};
        tok_map_init(&last, (size_t)nm + 1);
        for (int32_t i = 0; i < nm; i++)
            *tok_map_put(&last,
                         (((uint64_t)(uint32_t)mp[3 * i] << 32) | (uint32_t)mp[3 * i + 1]) + 1, 0) =
                i;
        t->merge_a = malloc(((size_t)nm + 1) * sizeof(int32_t));
        t->merge_b = malloc(((size_t)nm + 1) * sizeof(int32_t));
        tok_map_init(&t->merges, (size_t)nm + 1);
        for (int32_t i = 0; i < nm; i++) {
            uint64_t key = (((uint64_t)(uint32_t)mp[3 * i] << 32) | (uint32_t)mp[3 * i + 1]) + 1;
            if (*tok_map_get(&last, key) != i) continue;
            *tok_map_put(&t->merges, key, 0) = ((int64_t)t->n_merges << 32) | mp[3 * i + 2];
            t->merge_a[t->n_merges] = mp[3 * i];
            t->merge_b[t->n_merges] = mp[3 * i + 1];
            t->n_merges++;
        }
        tok_map_free(&last);
    }
    free(mp);
    st_free(&L.vocab);
    if (rc) {
        tok_free(t);
        return rc;
    }
    if (t->n_vocab != o->vocab_size) {
        if (t->n_vocab > o->vocab_size)
            tok_errf(err,
                     "vocab_size %d is smaller than the special tokens plus the alphabet of the "
                     "corpus (%d tokens)",
                     o->vocab_size, t->n_vocab);
        else
            tok_errf(err,
                     "training produced %d tokens, not vocab_size %d (no pair left to merge: the "
                     "corpus is too "
                     "small for this vocabulary)",
                     t->n_vocab, o->vocab_size);
        *out = t; /* still usable; the caller decides (the reference fails the build) */
        return TOK_EINVAL;
    }
    *out = t;
    return TOK_OK;
}

int tok_train(tok_tokenizer **out, const tok_options *o, const char *const *docs,
              const size_t *lens, size_t n_docs, char *err) {
    if (!out || !o || (n_docs && (!docs || !lens))) {
        tok_errf(err, "tok_train: NULL argument");
        return TOK_EINVAL;
    }
    doc_src s = {docs, lens, n_docs};
    return train_impl(out, o, s, err);
}

int tok_train_files(tok_tokenizer **out, const tok_options *o, const char *const *paths,
                    size_t n_paths, char *err) {
    *out = NULL;
    char **bufs = calloc(n_paths + 1, sizeof(char *));
    size_t cap = 1 << 16, n = 0;
    const char **docs = malloc(cap * sizeof(char *));
    size_t *lens = malloc(cap * sizeof(size_t));
    int rc = TOK_OK;
    for (size_t f = 0; f < n_paths && rc == TOK_OK; f++) {
        size_t len;
        char e[TOK_ERRLEN] = {0};
        if (core_read_file(paths[f], &bufs[f], &len, e, sizeof(e)) != 0) {
            tok_errf(err, "cannot read %s: %s", paths[f], e);
            rc = TOK_EIO;
            break;
        }
        /* a file that is not UTF-8 text would train a vocabulary of junk (or none at all) */
        size_t head = len < TOK_TEXT_CHECK_BYTES ? len : TOK_TEXT_CHECK_BYTES;
        char msg[TOK_ERRLEN];
        int v = tok_text_check(bufs[f], head, head == len, paths[f], msg, sizeof msg);
        if (v < 0) {
            tok_errf(err, "%s", msg);
            rc = TOK_EFORMAT;
            break;
        }
        if (v > 0) core_log_warn("%s", msg);
        size_t i = 0;
        while (i < len) {
            const char *nl = memchr(bufs[f] + i, '\n', len - i);
            size_t end = nl ? (size_t)(nl - bufs[f]) : len;
            if (n == cap) {
                cap *= 2;
                docs = realloc(docs, cap * sizeof(char *));
                lens = realloc(lens, cap * sizeof(size_t));
                if (!docs || !lens) abort();
            }
            docs[n] = bufs[f] + i;
            lens[n] = end - i;
            n++;
            i = end + 1;
        }
    }
    if (rc == TOK_OK) rc = tok_train(out, o, docs, lens, n, err);
    for (size_t f = 0; f < n_paths; f++)
        free(bufs[f]);
    free(bufs);
    free(docs);
    free(lens);
    return rc;
}
