/* Block interpreter of crypten_lite word programs (see crypten_lite/ring/program.py).
 * Each instruction runs over one block of elements in a plain loop the compiler vectorizes;
 * inputs of n words are read in place, single-word inputs are broadcast into a block. */
#ifndef CRYPTEN_LITE_WORD_PROGRAM_H
#define CRYPTEN_LITE_WORD_PROGRAM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define WP_BLOCK 512

static void wp_and(uint64_t *d, const uint64_t *a, const uint64_t *b, ptrdiff_t n)
{ for (ptrdiff_t j = 0; j < n; j++) d[j] = a[j] & b[j]; }
static void wp_xor(uint64_t *d, const uint64_t *a, const uint64_t *b, ptrdiff_t n)
{ for (ptrdiff_t j = 0; j < n; j++) d[j] = a[j] ^ b[j]; }
static void wp_add(uint64_t *d, const uint64_t *a, const uint64_t *b, ptrdiff_t n)
{ for (ptrdiff_t j = 0; j < n; j++) d[j] = a[j] + b[j]; }
static void wp_sub(uint64_t *d, const uint64_t *a, const uint64_t *b, ptrdiff_t n)
{ for (ptrdiff_t j = 0; j < n; j++) d[j] = a[j] - b[j]; }
static void wp_mul(uint64_t *d, const uint64_t *a, const uint64_t *b, ptrdiff_t n)
{ for (ptrdiff_t j = 0; j < n; j++) d[j] = a[j] * b[j]; }
static void wp_shr(uint64_t *d, const uint64_t *a, unsigned s, ptrdiff_t n)
{ for (ptrdiff_t j = 0; j < n; j++) d[j] = a[j] >> s; }
static void wp_shl(uint64_t *d, const uint64_t *a, unsigned s, ptrdiff_t n)
{ for (ptrdiff_t j = 0; j < n; j++) d[j] = a[j] << s; }
static void wp_or(uint64_t *d, const uint64_t *a, const uint64_t *b, ptrdiff_t n)
{ for (ptrdiff_t j = 0; j < n; j++) d[j] = a[j] | b[j]; }
static void wp_not(uint64_t *d, const uint64_t *a, ptrdiff_t n)
{ for (ptrdiff_t j = 0; j < n; j++) d[j] = ~a[j]; }

/* regs: n_slots * WP_BLOCK words of scratch; slot_ptr: n_slots pointers of scratch.
 * Returns nothing: outputs are written to dst (n_out rows of n words). */
static void wp_run(const int64_t *code, ptrdiff_t n_code, ptrdiff_t n_slots, uint64_t *regs,
                   const uint64_t **slot_ptr, const uint64_t *const *inputs,
                   const int64_t *sizes, ptrdiff_t n_in, const int64_t *outs, ptrdiff_t n_out,
                   uint64_t *dst, ptrdiff_t n)
{
    for (ptrdiff_t k = 0; k < n_slots; k++) slot_ptr[k] = regs + k * WP_BLOCK;
    for (ptrdiff_t k = 0; k < n_in; k++) {
        if (sizes[k] == 1) {
            uint64_t *fill = regs + k * WP_BLOCK;
            for (ptrdiff_t j = 0; j < WP_BLOCK; j++) fill[j] = inputs[k][0];
        }
    }
    for (ptrdiff_t start = 0; start < n; start += WP_BLOCK) {
        ptrdiff_t bn = n - start < WP_BLOCK ? n - start : WP_BLOCK;
        for (ptrdiff_t k = 0; k < n_in; k++)
            if (sizes[k] != 1) slot_ptr[k] = inputs[k] + start;
        for (ptrdiff_t l = 0; l < n_code; l++) {
            const int64_t *ins = code + 4 * l;
            uint64_t *d = regs + ins[1] * WP_BLOCK;
            const uint64_t *a = slot_ptr[ins[2]];
            switch (ins[0]) {
            case 0: wp_and(d, a, slot_ptr[ins[3]], bn); break;
            case 1: wp_xor(d, a, slot_ptr[ins[3]], bn); break;
            case 2: wp_add(d, a, slot_ptr[ins[3]], bn); break;
            case 3: wp_sub(d, a, slot_ptr[ins[3]], bn); break;
            case 4: wp_mul(d, a, slot_ptr[ins[3]], bn); break;
            case 5: wp_shr(d, a, (unsigned)ins[3], bn); break;
            case 6: wp_shl(d, a, (unsigned)ins[3], bn); break;
            case 8: wp_or(d, a, slot_ptr[ins[3]], bn); break;
            default: wp_not(d, a, bn); break;
            }
        }
        for (ptrdiff_t k = 0; k < n_out; k++)
            memcpy(dst + k * n + start, slot_ptr[outs[k]], (size_t)bn * sizeof(uint64_t));
    }
}

#endif
