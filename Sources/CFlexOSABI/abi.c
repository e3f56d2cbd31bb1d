#include "flexos_abi.h"

/* FLEXOS_DEVICE_KINDS as a table the host's Swift reads (DeviceKind.all). */
static const struct flexos_device_kind kinds[] = {
#define KIND(name, description, base, bytes) {name, description, base, bytes},
    FLEXOS_DEVICE_KINDS(KIND)
#undef KIND
};

unsigned flexos_device_kind_count(void) { return sizeof kinds / sizeof kinds[0]; }

const struct flexos_device_kind *flexos_device_kind_at(unsigned index) {
    return index < flexos_device_kind_count() ? &kinds[index] : 0;
}
