/*
 * driftline_edge.h: Driftline's edge runtime for devices without Go, in one C99 header.
 *
 * It reads an edge bundle (docs/edge.md has its bytes) into memory the caller provides and
 * predicts a row without allocating; its predictions are the server's int8 variant's bit for
 * bit when compiled as ISO C99 (-std=c99, which turns floating-point contraction off; with
 * another mode pass -ffp-contract=off): every product and sum is rounded on its own, as in Go.
 *
 * It does not verify the bundle's Ed25519 signature: do it with the device's crypto library
 * (for example libsodium's crypto_sign_verify_detached) over the bytes dl_signed_range names,
 * against the registry's public key, before dl_load. dl_load checks the framing, the counter
 * against the installed one, and every index of the body, and names what is wrong.
 *
 *   #define DRIFTLINE_EDGE_IMPLEMENTATION   (in one .c file, before including it)
 *   #include "driftline_edge.h"
 *
 *   static unsigned char arena[256 * 1024];
 *   dl_model m; char err[160];
 *   if (dl_load(&m, bundle, bundle_len, installed_counter, arena, sizeof arena, err, sizeof err) != 0) { ...err... }
 *   double p = dl_predict(&m, row);            -- row: m.n_features doubles, the bundle's order
 *
 * Link with -lm (floor, ceil, ldexp: exact operations, the same on every C library).
 */
#ifndef DRIFTLINE_EDGE_H
#define DRIFTLINE_EDGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    double thr;     /* a numeric node: the threshold a present value goes left at or below */
    int32_t right;  /* an internal node: the right child (the left is the next node) */
    uint32_t aux;   /* another internal node: the threshold index, or the category set */
    uint16_t feat;
    uint8_t kind;   /* 0 leaf, 1 numeric, 2 other */
    uint8_t flags;  /* 1 leaf, 2 missing goes left, 4 categorical */
    int8_t leaf;
} dl_node;

typedef struct {
    uint8_t categorical;
    uint32_t n_cuts;
    const uint8_t *cuts; /* n_cuts little-endian doubles inside the bundle */
    double min, max;
} dl_feature;

typedef struct {
    int kind;       /* 1 trees, 2 linear */
    int logistic;
    double base, scale;
    uint32_t n_features;
    dl_feature *features;
    const int8_t *weights; /* linear */
    const uint8_t *means, *scales;
    uint32_t n_trees;
    int32_t *roots;
    dl_node *nodes;
    uint64_t (*cats)[4];
    uint64_t counter;
    const uint8_t *manifest; /* the manifest's JSON, not NUL-terminated */
    uint32_t manifest_len;
} dl_model;

/* dl_signed_range gives the length of the signed bytes (from offset 0) and where the 64-byte
   signature starts; 0 on a malformed framing. */
int dl_signed_range(const uint8_t *data, size_t len, size_t *signed_len);
/* dl_load reads a bundle into m, using arena for its tables; 0, or -1 with err set. */
int dl_load(dl_model *m, const uint8_t *data, size_t len, uint64_t installed, void *arena, size_t arena_len, char *err, size_t errlen);
/* dl_predict scores one row. */
double dl_predict(const dl_model *m, const double *x);
/* dl_exp and dl_sigmoid: the runtime's e^x and logistic function, as in Go's package edge. */
double dl_exp(double x);
double dl_sigmoid(double m);

#ifdef DRIFTLINE_EDGE_IMPLEMENTATION
#include <math.h>
#include <stdio.h>
#include <string.h>

static uint64_t dl_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint32_t dl_u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static double dl_f64(const uint8_t *p) {
    uint64_t b = dl_u64(p);
    double d;
    memcpy(&d, &b, 8);
    return d;
}
static double dl_nan(void) {
    uint64_t b = 0x7FF8000000000001ULL; /* Go's math.NaN() */
    double d;
    memcpy(&d, &b, 8);
    return d;
}
static double dl_canonical(double v) { return v != v ? dl_nan() : v; }

double dl_exp(double x) {
    const double ln2hi = 6.93147180369123816490e-01, ln2lo = 1.90821492927058770002e-10, log2e = 1.44269504088896338700e+00;
    const double p1 = 1.66666666666666019037e-01, p2 = -2.77777777770155933842e-03, p3 = 6.61375632143793436117e-05,
                 p4 = -1.65339022054652515390e-06, p5 = 4.13813679705723846039e-08;
    if (x != x) return x;
    if (x > 7.09782712893383973096e+02) return HUGE_VAL;
    if (x < -7.45133219101941108420e+02) return 0;
    if (x > -3.725290298461914e-09 && x < 3.725290298461914e-09) return 1 + x;
    double t = x * log2e, k;
    k = t < 0 ? ceil(t - 0.5) : floor(t + 0.5);
    double hi = x - k * ln2hi, lo = k * ln2lo, r = hi - lo, tt = r * r;
    double p = p4 + tt * p5;
    p = p3 + tt * p;
    p = p2 + tt * p;
    p = p1 + tt * p;
    double c = r - tt * p;
    double y = 1 - ((lo - (r * c) / (2 - c)) - hi);
    return ldexp(y, (int)k);
}

double dl_sigmoid(double m) { return dl_canonical(1 / (1 + dl_exp(-m))); }

int dl_signed_range(const uint8_t *data, size_t len, size_t *signed_len) {
    if (len < 16 || memcmp(data, "DLEDGE", 6) != 0) return 0;
    uint64_t mlen = dl_u32(data + 8);
    if (12 + mlen + 4 > len) return 0;
    uint64_t blen = dl_u32(data + 12 + mlen);
    uint64_t end = 16 + mlen + blen;
    if (end + 64 != len) return 0;
    *signed_len = (size_t)end;
    return 1;
}

/* the arena: aligned bumps */
typedef struct { uint8_t *p; size_t left; } dl_arena;
static void *dl_alloc(dl_arena *a, size_t n) {
    size_t pad = (size_t)(-(uintptr_t)a->p) & 7;
    if (pad + n > a->left) return NULL;
    void *out = a->p + pad;
    a->p += pad + n;
    a->left -= pad + n;
    return out;
}

typedef struct { const uint8_t *b; size_t len, off; char *err; size_t errlen; int bad; } dl_reader;
static const uint8_t *dl_need(dl_reader *r, size_t n, const char *what) {
    if (r->bad) return NULL;
    if (n > r->len - r->off) {
        snprintf(r->err, r->errlen, "body truncated reading %s at offset %zu", what, r->off);
        r->bad = 1;
        return NULL;
    }
    const uint8_t *p = r->b + r->off;
    r->off += n;
    return p;
}
static uint64_t dl_uint(dl_reader *r, int width, const char *what) {
    const uint8_t *p = dl_need(r, (size_t)width, what);
    uint64_t v = 0;
    if (p) for (int i = width - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static int dl_fail(dl_reader *r, const char *msg, uint64_t a, uint64_t b) {
    if (!r->bad) snprintf(r->err, r->errlen, msg, (unsigned long long)a, (unsigned long long)b);
    r->bad = 1;
    return -1;
}

static uint64_t dl_counter(const uint8_t *man, uint32_t n) {
    const char *key = "\"counter\":";
    size_t k = strlen(key);
    for (uint32_t i = 0; i + k < n; i++) {
        if (memcmp(man + i, key, k) == 0) {
            uint64_t v = 0;
            for (uint32_t j = i + (uint32_t)k; j < n && man[j] >= '0' && man[j] <= '9'; j++) v = v * 10 + (uint64_t)(man[j] - '0');
            return v;
        }
    }
    return 0;
}

/* dl_tree reads one tree's nodes into m->nodes, or with no table only counts them. */
static int dl_tree(dl_reader *r, dl_model *m, uint32_t *used, uint32_t *cats_used, uint32_t cap, uint32_t cat_cap) {
    uint64_t n = dl_uint(r, 4, "node count");
    if (r->bad) return -1;
    if (n == 0 || (m->nodes && *used + n > cap)) return dl_fail(r, "a tree of %llu nodes where %llu were counted", n, cap - *used);
    int fw = m->n_features > 256 ? 2 : 1, nw = n > 65536 ? 4 : 2;
    int32_t first = (int32_t)*used;
    for (uint64_t i = 0; i < n && !r->bad; i++) {
        dl_node scratch, *nd = m->nodes ? &m->nodes[*used] : &scratch; /* no table: the counting pass */
        uint64_t catbuf[4];
        memset(nd, 0, sizeof *nd);
        nd->flags = (uint8_t)dl_uint(r, 1, "node flags");
        if (nd->flags & 1) {
            nd->kind = 0;
            nd->leaf = (int8_t)dl_uint(r, 1, "leaf");
            (*used)++;
            continue;
        }
        uint64_t f = dl_uint(r, fw, "feature"), ix = 0;
        if (f >= m->n_features) return dl_fail(r, "a node splits on feature %llu of %llu", f, m->n_features);
        if (nd->flags & 4) {
            if (m->nodes && *cats_used >= cat_cap) return dl_fail(r, "categorical split %llu of %llu counted", *cats_used, cat_cap);
            for (int w = 0; w < 4; w++) catbuf[w] = dl_uint(r, 8, "category set");
            if (m->nodes) memcpy(m->cats[*cats_used], catbuf, sizeof catbuf);
            ix = (*cats_used)++;
        } else {
            ix = dl_uint(r, m->features[f].n_cuts > 255 ? 2 : 1, "threshold index");
            if (ix > m->features[f].n_cuts) return dl_fail(r, "threshold index %llu of %llu", ix, m->features[f].n_cuts);
        }
        uint64_t right = dl_uint(r, nw, "right child");
        if (i + 1 >= n || right <= i + 1 || right >= n) return dl_fail(r, "children outside the tree (right %llu of %llu)", right, n);
        nd->feat = (uint16_t)f;
        nd->aux = (uint32_t)ix;
        nd->right = first + (int32_t)right;
        nd->kind = 2;
        if (!(nd->flags & 4) && !m->features[f].categorical && ix >= 1) {
            nd->kind = 1;
            nd->thr = dl_f64(m->features[f].cuts + 8 * (ix - 1));
        }
        (*used)++;
    }
    return r->bad ? -1 : 0;
}

int dl_load(dl_model *m, const uint8_t *data, size_t len, uint64_t installed, void *arena, size_t arena_len, char *err, size_t errlen) {
    size_t signed_len;
    memset(m, 0, sizeof *m);
    if (!dl_signed_range(data, len, &signed_len)) {
        snprintf(err, errlen, "not an edge bundle, or truncated (%zu bytes)", len);
        return -1;
    }
    if (data[6] != 1 || data[7] != 0) {
        snprintf(err, errlen, "format version %u at offset 6; this runtime reads 1", (unsigned)(data[6] | data[7] << 8));
        return -1;
    }
    m->manifest_len = dl_u32(data + 8);
    m->manifest = data + 12;
    m->counter = dl_counter(m->manifest, m->manifest_len);
    if (m->counter < installed) {
        snprintf(err, errlen, "bundle counter %llu is older than the installed %llu", (unsigned long long)m->counter, (unsigned long long)installed);
        return -1;
    }
    dl_reader r = {data + 16 + m->manifest_len, signed_len - 16 - m->manifest_len, 0, err, errlen, 0};
    dl_arena a = {(uint8_t *)arena, arena_len};
    const uint8_t *h = dl_need(&r, 24, "header");
    if (!h) return -1;
    m->kind = h[0];
    m->logistic = h[1] == 1;
    m->base = dl_f64(h + 4);
    m->scale = dl_f64(h + 12);
    m->n_features = dl_u32(h + 20);
    m->features = dl_alloc(&a, sizeof(dl_feature) * (m->n_features ? m->n_features : 1));
    if (!m->features) return dl_fail(&r, "arena of %llu bytes too small for %llu features", arena_len, m->n_features);
    for (uint32_t f = 0; f < m->n_features; f++) {
        const uint8_t *p = dl_need(&r, 24, "feature");
        if (!p) return -1;
        dl_feature *ft = &m->features[f];
        ft->categorical = p[0] == 1;
        ft->min = dl_f64(p + 4);
        ft->max = dl_f64(p + 12);
        ft->n_cuts = dl_u32(p + 20);
        ft->cuts = dl_need(&r, (size_t)ft->n_cuts * 8, "thresholds");
        if (!ft->cuts && ft->n_cuts) return -1;
    }
    if (m->kind == 2) {
        m->weights = (const int8_t *)dl_need(&r, m->n_features, "weights");
        m->means = dl_need(&r, 8 * (size_t)m->n_features, "means");
        m->scales = dl_need(&r, 8 * (size_t)m->n_features, "scales");
        if (r.bad) return -1;
    } else if (m->kind == 1) {
        m->n_trees = (uint32_t)dl_uint(&r, 4, "tree count");
        size_t at = r.off;
        uint32_t used = 0, cats_used = 0;
        for (uint32_t k = 0; k < m->n_trees && !r.bad; k++) /* counting pass: exact tables */
            if (dl_tree(&r, m, &used, &cats_used, 0, 0) != 0) return -1;
        uint32_t cap = used, cat_cap = cats_used;
        m->roots = dl_alloc(&a, sizeof(int32_t) * (m->n_trees ? m->n_trees : 1));
        m->nodes = dl_alloc(&a, sizeof(dl_node) * (cap ? cap : 1));
        m->cats = dl_alloc(&a, sizeof(uint64_t[4]) * (cat_cap ? cat_cap : 1));
        if (!m->roots || !m->nodes || !m->cats) return dl_fail(&r, "arena of %llu bytes too small for %llu nodes", arena_len, cap);
        r.off = at;
        used = cats_used = 0;
        for (uint32_t k = 0; k < m->n_trees; k++) {
            m->roots[k] = (int32_t)used;
            if (dl_tree(&r, m, &used, &cats_used, cap, cat_cap) != 0) return -1;
        }
    } else {
        return dl_fail(&r, "unknown kind %llu at offset %llu", (uint64_t)m->kind, 0);
    }
    if (r.off != r.len) return dl_fail(&r, "%llu bytes after the model at offset %llu", r.len - r.off, r.off);
    return 0;
}

static uint8_t dl_bin(const dl_model *m, uint16_t f, double v) {
    if (v != v) return 0;
    const dl_feature *ft = &m->features[f];
    if (ft->categorical) return (v >= 0 && v < 254 && v == trunc(v)) ? (uint8_t)(v + 1) : 255;
    size_t lo = 0, hi = ft->n_cuts;
    while (lo < hi) {
        size_t mid = (lo + hi) >> 1;
        if (dl_f64(ft->cuts + 8 * mid) < v) lo = mid + 1; else hi = mid;
    }
    return (uint8_t)(lo + 1);
}

static int dl_other_left(const dl_model *m, const dl_node *nd, double v) {
    uint8_t b = dl_bin(m, nd->feat, v);
    if (nd->flags & 4) return (m->cats[nd->aux][b >> 6] >> (b & 63)) & 1;
    if (b == 0) return (nd->flags & 2) != 0;
    return b <= nd->aux;
}

double dl_predict(const dl_model *m, const double *x) {
    if (m->kind == 2) {
        double s = 0;
        for (uint32_t j = 0; j < m->n_features; j++) {
            double d = x[j] - dl_f64(m->means + 8 * j);
            double t = (double)m->weights[j] * d;
            s = s + t / dl_f64(m->scales + 8 * j);
        }
        double margin = m->base + m->scale * s;
        return m->logistic ? dl_sigmoid(margin) : dl_canonical(margin);
    }
    int32_t sum = 0;
    for (uint32_t k = 0; k < m->n_trees; k++) {
        int32_t i = m->roots[k];
        for (;;) {
            const dl_node *nd = &m->nodes[i];
            if (nd->kind == 0) { sum += nd->leaf; break; }
            double v = x[nd->feat];
            int left = nd->kind == 1 ? (v <= nd->thr || (v != v && (nd->flags & 2))) : dl_other_left(m, nd, v);
            i = left ? i + 1 : nd->right;
        }
    }
    double margin = m->base + m->scale * (double)sum;
    return m->logistic ? dl_sigmoid(margin) : dl_canonical(margin);
}
#endif /* DRIFTLINE_EDGE_IMPLEMENTATION */
#endif /* DRIFTLINE_EDGE_H */
