/* Embeds an exported LISTA: `unrollc export RUN_DIR -o DIR` writes the
 * header, the libraries and a CMake package; this program links the static
 * library and needs nothing else at run time (no LibTorch, MLIR or Halide).
 *
 *   cmake -S examples/embed -B build-embed -Dlista_DIR=DIR/lib/cmake/lista
 *   cmake --build build-embed && build-embed/embed
 */
#include "lista.h"

#include <math.h>
#include <stdio.h>

enum { BATCH = 4 };

int main(void) {
  static float x[BATCH * LISTA_X_SIZE];
  static float y0[BATCH * LISTA_Y0_SIZE];
  static float y[BATCH * LISTA_OUTPUT_SIZE];
  static float layers[BATCH * (LISTA_LAYERS + 1) * LISTA_OUTPUT_SIZE];
  for (int i = 0; i < BATCH * LISTA_X_SIZE; ++i)
    x[i] = 0.5f * sinf(0.37f * (float)i);
  /* The spec draws the initial code y0 ~ N(0, 1); an exported model takes
   * that draw as an input. This example starts from zero. */
  int status = lista_run(BATCH, x, BATCH * LISTA_X_SIZE, y0,
                         BATCH * LISTA_Y0_SIZE, y, BATCH * LISTA_OUTPUT_SIZE,
                         layers, BATCH * (LISTA_LAYERS + 1) * LISTA_OUTPUT_SIZE);
  printf("status: %s\n", lista_status_string(status));
  if (status != LISTA_OK)
    return 1;
  for (int b = 0; b < BATCH; ++b) {
    double l1 = 0;
    int nonzero = 0;
    for (int i = 0; i < LISTA_OUTPUT_SIZE; ++i) {
      float v = y[b * LISTA_OUTPUT_SIZE + i];
      l1 += fabsf(v);
      nonzero += v != 0.0f;
    }
    printf("instance %d: ||y||_1 = %.4f, %d of %d entries non-zero\n", b, l1,
           nonzero, LISTA_OUTPUT_SIZE);
  }
  /* The last layer of `layers` is the output. */
  int same = 1;
  for (int b = 0; b < BATCH; ++b)
    for (int i = 0; i < LISTA_OUTPUT_SIZE; ++i)
      same &= layers[(b * (LISTA_LAYERS + 1) + LISTA_LAYERS) *
                         LISTA_OUTPUT_SIZE +
                     i] == y[b * LISTA_OUTPUT_SIZE + i];
  printf("last layer equals the output: %s\n", same ? "yes" : "no");
  /* Wrong sizes are reported, never a crash. */
  status = lista_run(BATCH, x, BATCH * LISTA_X_SIZE - 1, y0,
                     BATCH * LISTA_Y0_SIZE, y, BATCH * LISTA_OUTPUT_SIZE,
                     NULL, 0);
  printf("with a short input: %s\n", lista_status_string(status));
  /* lista_run keeps the memory it frees for its next call; done with it. */
  lista_release_memory();
  return 0;
}
