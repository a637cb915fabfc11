/* mpmc: lock-free queue (being written). */
#include "islewatch/err.h"
typedef int iw_mpmc_unit_placeholder;
