/*
 * curing.h: the few liburing calls the network device makes, as plain functions.
 *
 * liburing's submission helpers are static inline functions that fill a submission
 * queue entry; these wrappers get the entry, fill it and set its user data, so the
 * Swift side (Sources/NetworkDevice) makes one call per operation. The loads and stores
 * at the end are for the device's memory, which the guest writes concurrently.
 * Each returns 0, or -EBUSY when the submission queue is full.
 */
#ifndef CURING_H
#define CURING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct io_uring;

/* A ring with `entries` submission entries, allocated here; NULL and errno on failure. */
struct io_uring *curing_create(unsigned entries, int *error);
void curing_destroy(struct io_uring *ring);

int curing_multishot_accept(struct io_uring *ring, int fd, uint64_t user_data);
int curing_recv(struct io_uring *ring, int fd, void *buffer, size_t length, uint64_t user_data);
int curing_send(struct io_uring *ring, int fd, const void *buffer, size_t length, uint64_t user_data);
int curing_read(struct io_uring *ring, int fd, void *buffer, size_t length, uint64_t user_data);

/* Submits what was prepared; waits for at least `wait` completions. -errno on failure. */
/* A completion (result -ETIME) after `nanoseconds`. */
int curing_timeout(struct io_uring *ring, uint64_t nanoseconds, uint64_t user_data);
int curing_submit(struct io_uring *ring, unsigned wait);

/* One completion, if there is one: returns 1 and fills the out values, else 0. */
int curing_next_completion(struct io_uring *ring, uint64_t *user_data, int32_t *result, uint32_t *flags);

/* Whether a multishot request stays armed after this completion. */
int curing_more(uint32_t flags);

/* Loads and stores of memory the guest shares: ordered against the other side, and
 * never cached in a register by the compiler. */
static inline uint64_t curing_load64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline uint32_t curing_load32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void curing_store64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline void curing_store32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline void curing_full_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static inline void curing_cpu_relax(void) { __builtin_ia32_pause(); }

#endif
