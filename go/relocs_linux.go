package main

/*
#define _GNU_SOURCE
#include <link.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

// The part of this library's relocation table (.rela.dyn) that whole
// pages cover, found from its program headers: the bounds of the
// read-only segment that holds it, and the table itself (DT_RELA,
// DT_RELASZ), whose address glibc stores relocated and musl does not.
struct tailnet_relocs {
	uintptr_t start, end;
};

static int tailnet_find_relocs(struct dl_phdr_info *info, size_t size, void *data) {
	struct tailnet_relocs *out = data;
	uintptr_t self = (uintptr_t)&tailnet_find_relocs;
	const ElfW(Phdr) *first = NULL, *dynamic = NULL;
	int ours = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *p = &info->dlpi_phdr[i];
		if (p->p_type == PT_LOAD) {
			uintptr_t lo = info->dlpi_addr + p->p_vaddr;
			if (self >= lo && self < lo + p->p_memsz) ours = 1;
			if (first == NULL || p->p_vaddr < first->p_vaddr) first = p;
		} else if (p->p_type == PT_DYNAMIC) {
			dynamic = p;
		}
	}
	// Only a shared library (the main program has an empty name), and only
	// a table in a read-only segment: its pages are never written.
	if (!ours || info->dlpi_name == NULL || info->dlpi_name[0] == 0 || first == NULL ||
	    dynamic == NULL || first->p_flags != PF_R) {
		return ours;
	}
	uintptr_t seg_lo = info->dlpi_addr + first->p_vaddr, seg_hi = seg_lo + first->p_memsz;
	uintptr_t rela = 0, relasz = 0;
	for (const ElfW(Dyn) *d = (const ElfW(Dyn) *)(info->dlpi_addr + dynamic->p_vaddr); d->d_tag != DT_NULL; d++) {
		if (d->d_tag == DT_RELA) rela = d->d_un.d_ptr;
		if (d->d_tag == DT_RELASZ) relasz = d->d_un.d_val;
	}
	if (rela < seg_lo) rela += info->dlpi_addr;
	if (rela < seg_lo || rela >= seg_hi || relasz > seg_hi - rela) return 1;
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	out->start = (rela + page - 1) & ~(page - 1);
	out->end = (rela + relasz) & ~(page - 1);
	return 1;
}

// tailnet_drop_relocs tells the kernel this library is done with its
// relocation table, and returns the bytes dropped.
static size_t tailnet_drop_relocs(void) {
	struct tailnet_relocs r = {0, 0};
	dl_iterate_phdr(tailnet_find_relocs, &r);
	if (r.end <= r.start || madvise((void *)r.start, r.end - r.start, MADV_DONTNEED) != 0) {
		return 0;
	}
	return r.end - r.start;
}
*/
import "C"

// droppedRelocBytes is how much of the relocation table init dropped.
var droppedRelocBytes int64

// A shared library's dynamic relocations are read once, by the loader,
// when it is opened: about 110,000 entries (2.5 MiB) for this one, since
// every pointer in a Go binary's data needs one in a c-shared build. The
// loader leaves the pages mapped, so they count in the process's resident
// memory for good, though nothing reads them again. Unmapping them from
// this process costs nothing: they are clean pages of the file (the page
// cache keeps them, or reads them back should anything touch them), so
// this changes what RSS reports, not what the program can do.
func init() {
	droppedRelocBytes = int64(C.tailnet_drop_relocs())
}
