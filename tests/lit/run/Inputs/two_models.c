/* Two exported models in one program (run/embed_two.unroll): the same
 * trained LISTA exported as `la` (one pipeline) and `lb` (a pipeline per
 * layer), called in turns; each keeps its own Halide runtime and blocks. */
#include "la.h"
#include "lb.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  const long B = 300;
  float *x = malloc(B * LA_X_SIZE * sizeof(float));
  float *y0 = calloc(B * LA_Y0_SIZE, sizeof(float));
  float *a = malloc(B * LA_OUTPUT_SIZE * sizeof(float));
  float *b = malloc(B * LB_OUTPUT_SIZE * sizeof(float));
  if (!x || !y0 || !a || !b)
    return 1;
  for (long i = 0; i < B * LA_X_SIZE; ++i)
    x[i] = 3.0f * sinf(0.7f * (float)i);
  for (int k = 0; k < 3; ++k) {
    int sa = la_run(B, x, B * LA_X_SIZE, y0, B * LA_Y0_SIZE, a,
                    B * LA_OUTPUT_SIZE, NULL, 0);
    int sb = lb_run(B, x, B * LB_X_SIZE, y0, B * LB_Y0_SIZE, b,
                    B * LB_OUTPUT_SIZE, NULL, 0);
    printf("call %d: %s, %s\n", k, la_status_string(sa), lb_status_string(sb));
    if (k == 1)
      la_release_memory();
  }
  double diff = 0, norm = 0;
  for (long i = 0; i < B * LA_OUTPUT_SIZE; ++i) {
    diff += (a[i] - b[i]) * (double)(a[i] - b[i]);
    norm += a[i] * (double)a[i];
  }
  printf("outputs non-zero: %s\n", norm > 0 ? "yes" : "no");
  printf("same outputs: %s\n", diff <= 1e-8 * norm ? "yes" : "no");
  lb_release_memory();
  free(x);
  free(y0);
  free(a);
  free(b);
  return 0;
}
