#include "flexos_abi.h"
