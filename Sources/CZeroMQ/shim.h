#ifndef BRICKYARD_CZEROMQ_SHIM_H
#define BRICKYARD_CZEROMQ_SHIM_H
#include <zmq.h>
#endif
