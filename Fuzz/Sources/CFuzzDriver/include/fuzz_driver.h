/* libFuzzer's entry point for a program with a main of its own (libclang_rt.fuzzer):
 * SwiftPM gives every executable its own main, so flexos-fuzz calls the driver itself. */
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
