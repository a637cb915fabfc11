/* ring: lock-free queue (being written). */
#include "islewatch/err.h"
typedef int iw_ring_unit_placeholder;
