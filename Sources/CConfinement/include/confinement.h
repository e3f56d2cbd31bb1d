/*
 * confinement.h: a thin layer over libseccomp for the monitor's vCPU threads.
 *
 * After a compartment is set up, its vCPU thread needs only a handful of system calls
 * (KVM_RUN and a few ioctls, memory and futex calls, eventfd and console writes). The
 * thread confines itself to them; any other system call raises SIGSYS, whose handler
 * (here, because it must be async-signal-safe) reports the call's number through the
 * thread's eventfd and ends that thread alone. The monitor sees the report and stops the
 * image set with it.
 */
#ifndef CONFINEMENT_H
#define CONFINEMENT_H

#include <stddef.h>

/* Confines the calling thread: the system calls named in `allowed` are allowed, ioctl
 * only with one of the `ioctls` request numbers; anything else writes (number + 1) to
 * `report_fd` and ends the thread. Returns 0, or a negative errno (an unknown name is
 * -EINVAL). */
int confinement_apply(const char *const *allowed, size_t count, const unsigned long *ioctls, size_t ioctl_count, int report_fd);

/* The name of system call `number` on this architecture, into `buffer`; "?" if unknown. */
void confinement_syscall_name(int number, char *buffer, size_t size);

#endif
