/*
 * OpenBLAS sgemm called from C, the reference for "kdeno GEMM / OpenBLAS
 * from C". Prints one line per size: the best of several runs of
 * C = A @ B (row-major, square, float32) in GFLOP/s.
 *
 * Build and run: bench/gemm_c.sh [sizes...]
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  int defaults[] = {256, 512, 1024, 2048};
  int count = argc > 1 ? argc - 1 : 4;
  printf("OpenBLAS from C, %d thread(s): %s\n", openblas_get_num_threads(),
         openblas_get_config());
  for (int s = 0; s < count; s++) {
    int n = argc > 1 ? atoi(argv[s + 1]) : defaults[s];
    size_t len = (size_t)n * n;
    float *a = malloc(len * sizeof(float));
    float *b = malloc(len * sizeof(float));
    float *c = malloc(len * sizeof(float));
    srand(42);
    for (size_t i = 0; i < len; i++) {
      a[i] = (float)rand() / RAND_MAX - 0.5f;
      b[i] = (float)rand() / RAND_MAX - 0.5f;
    }
    double flop = 2.0 * n * n * (double)n;
    /* repeat so each size runs about a second, at least 3 times */
    int reps = (int)(2e10 / flop);
    if (reps < 3) reps = 3;
    if (reps > 200) reps = 200;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a,
                n, b, n, 0.0f, c, n); /* warm-up */
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
      double t0 = now();
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a,
                  n, b, n, 0.0f, c, n);
      double dt = now() - t0;
      if (dt < best) best = dt;
    }
    printf("gemm %d: %.2f GFLOP/s (best of %d, %.3f ms)\n", n,
           flop / best / 1e9, reps, best * 1e3);
    free(a);
    free(b);
    free(c);
  }
  return 0;
}
