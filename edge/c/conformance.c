/* The C runtime's conformance program: reads a bundle, rows (little-endian doubles, row
   after row) and writes its predictions (little-endian doubles). edge.TestTheCHeader runs it. */
#define DRIFTLINE_EDGE_IMPLEMENTATION
#include "driftline_edge.h"

#include <stdio.h>
#include <stdlib.h>

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    fclose(f);
    *len = (size_t)n;
    return b;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: conformance BUNDLE ROWS OUT\n"); return 2; }
    size_t blen, rlen;
    unsigned char *bundle = slurp(argv[1], &blen), *rows = slurp(argv[2], &rlen);
    if (!bundle || !rows) { fprintf(stderr, "cannot read the inputs\n"); return 2; }
    static unsigned char arena[4 << 20];
    dl_model m;
    char err[200];
    if (dl_load(&m, bundle, blen, 0, arena, sizeof arena, err, sizeof err) != 0) { fprintf(stderr, "dl_load: %s\n", err); return 1; }
    size_t n = rlen / 8 / m.n_features;
    FILE *out = fopen(argv[3], "wb");
    double *x = (double *)rows; /* the rows file was written little-endian on a little-endian host */
    for (size_t i = 0; i < n; i++) {
        double p = dl_predict(&m, x + i * m.n_features);
        fwrite(&p, 8, 1, out);
    }
    fclose(out);
    return 0;
}
