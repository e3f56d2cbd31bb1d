#define _GNU_SOURCE
#include "confinement.h"

#include <errno.h>
#include <seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The eventfd the confined thread reports a forbidden system call to. */
static __thread int confinement_report_fd = -1;

static void on_forbidden_syscall(int signal, siginfo_t *info, void *context) {
    (void)signal;
    (void)context;
    uint64_t value = (uint64_t)(uint32_t)info->si_syscall + 1;
    if (confinement_report_fd >= 0) (void)!write(confinement_report_fd, &value, sizeof value);
    syscall(SYS_exit, 0); /* this thread only, as the filter allows */
}

static int install_handler(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_forbidden_syscall;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGSYS, &action, NULL) != 0) return -errno;
    sigset_t sys;
    sigemptyset(&sys);
    sigaddset(&sys, SIGSYS);
    return -pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
}

int confinement_apply(const char *const *allowed, size_t count, const unsigned long *ioctls, size_t ioctl_count, int report_fd) {
    int result = install_handler();
    if (result != 0) return result;
    scmp_filter_ctx filter = seccomp_init(SCMP_ACT_TRAP);
    if (filter == NULL) return -ENOMEM;
    for (size_t i = 0; i < count && result == 0; i++) {
        int number = seccomp_syscall_resolve_name(allowed[i]);
        result = number == __NR_SCMP_ERROR ? -EINVAL : seccomp_rule_add_array(filter, SCMP_ACT_ALLOW, number, 0, NULL);
    }
    for (size_t i = 0; i < ioctl_count && result == 0; i++) {
        struct scmp_arg_cmp request = SCMP_A1(SCMP_CMP_EQ, ioctls[i]);
        result = seccomp_rule_add_array(filter, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, &request);
    }
    if (result == 0) {
        confinement_report_fd = report_fd;
        result = seccomp_load(filter);
    }
    seccomp_release(filter);
    return result;
}

void confinement_syscall_name(int number, char *buffer, size_t size) {
    char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, number);
    snprintf(buffer, size, "%s", name ? name : "?");
    free(name);
}
