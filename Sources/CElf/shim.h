/* libelf (ELF structure) and libdw (DWARF line tables) from elfutils. */
#include <gelf.h>
#include <libelf.h>
#include <elfutils/libdw.h>
#include <dwarf.h>
