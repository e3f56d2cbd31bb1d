/* libvirt's C API, as flexosctl's Hosts module uses it (libvirt-dev). */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
