#ifndef BRICKYARD_COPENBLAS_SHIM_H
#define BRICKYARD_COPENBLAS_SHIM_H
#include <cblas.h>
#include <lapacke.h>
/* Thread control is not in cblas.h on every build; declare what OpenBLAS exports. */
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
/* The kernel set ("core") OpenBLAS chose at load, and its build options (DYNAMIC_ARCH: it can choose). */
char *openblas_get_corename(void);
char *openblas_get_config(void);
#endif
