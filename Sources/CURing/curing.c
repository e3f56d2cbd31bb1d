#include "curing.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>

struct io_uring *curing_create(unsigned entries, int *error) {
    struct io_uring *ring = calloc(1, sizeof *ring);
    if (!ring) { *error = ENOMEM; return NULL; }
    int result = io_uring_queue_init(entries, ring, 0);
    if (result < 0) { free(ring); *error = -result; return NULL; }
    return ring;
}

void curing_destroy(struct io_uring *ring) {
    if (!ring) return;
    io_uring_queue_exit(ring);
    free(ring);
}

static struct io_uring_sqe *entry(struct io_uring *ring) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe) {
        io_uring_submit(ring); /* make room, then try once more */
        sqe = io_uring_get_sqe(ring);
    }
    return sqe;
}

#define PREPARE(call)                                        \
    struct io_uring_sqe *sqe = entry(ring);                  \
    if (!sqe) return -EBUSY;                                 \
    call;                                                    \
    io_uring_sqe_set_data64(sqe, user_data);                 \
    return 0

int curing_multishot_accept(struct io_uring *ring, int fd, uint64_t user_data) {
    PREPARE(io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, SOCK_CLOEXEC));
}

int curing_recv(struct io_uring *ring, int fd, void *buffer, size_t length, uint64_t user_data) {
    PREPARE(io_uring_prep_recv(sqe, fd, buffer, length, 0));
}

int curing_send(struct io_uring *ring, int fd, const void *buffer, size_t length, uint64_t user_data) {
    PREPARE(io_uring_prep_send(sqe, fd, buffer, length, MSG_NOSIGNAL));
}

int curing_read(struct io_uring *ring, int fd, void *buffer, size_t length, uint64_t user_data) {
    PREPARE(io_uring_prep_read(sqe, fd, buffer, (unsigned)length, 0));
}

/* The timespec must live until the entry is submitted: one per thread, and each ring is
 * driven by one thread that arms one timer at a time. */
static __thread struct __kernel_timespec timer_spec;

int curing_timeout(struct io_uring *ring, uint64_t nanoseconds, uint64_t user_data) {
    timer_spec.tv_sec = (long long)(nanoseconds / 1000000000u);
    timer_spec.tv_nsec = (long long)(nanoseconds % 1000000000u);
    PREPARE(io_uring_prep_timeout(sqe, &timer_spec, 0, 0));
}

int curing_submit(struct io_uring *ring, unsigned wait) {
    int result;
    do {
        result = wait ? io_uring_submit_and_wait(ring, wait) : io_uring_submit(ring);
    } while (result == -EINTR);
    return result < 0 ? result : 0;
}

int curing_next_completion(struct io_uring *ring, uint64_t *user_data, int32_t *result, uint32_t *flags) {
    struct io_uring_cqe *cqe = NULL;
    if (io_uring_peek_cqe(ring, &cqe) != 0 || !cqe) return 0;
    *user_data = io_uring_cqe_get_data64(cqe);
    *result = cqe->res;
    *flags = cqe->flags;
    io_uring_cqe_seen(ring, cqe);
    return 1;
}

int curing_more(uint32_t flags) { return (flags & IORING_CQE_F_MORE) != 0; }
