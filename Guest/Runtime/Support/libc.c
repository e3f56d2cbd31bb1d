/*
 * The C library symbol the Embedded Swift runtime calls that Swift code may not
 * define under its own name. It forwards to the runtime's Swift heap (Heap.swift).
 */
void flexos_private_free(void *pointer);

void free(void *pointer) { flexos_private_free(pointer); }
