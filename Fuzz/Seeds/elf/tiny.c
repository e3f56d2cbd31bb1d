__attribute__((section(".flexos_abi"), used)) const unsigned int flexos_abi_version = 2;
__attribute__((used)) unsigned long counter;
void _start(void) { for (;;) counter++; }
