/* Bit streams of selected word bits (see crypten_lite/ring/_ring_np.py gather_bits and
 * scatter_bits): stream bit i*k + j is bit pos[j] of word i, little-endian within bytes.
 * Bits move through a 64-bit accumulator flushed 8 bytes at a time. */
#ifndef CRYPTEN_LITE_BIT_STREAM_H
#define CRYPTEN_LITE_BIT_STREAM_H

#include <stddef.h>
#include <stdint.h>

static void bs_store(uint8_t *dst, uint64_t acc, int nbytes)
{
    for (int b = 0; b < nbytes; b++) dst[b] = (uint8_t)(acc >> (8 * b));
}

/* Move masks of Hacker's Delight compress/expand (Warren, 2nd ed., sections 7-4 and 7-5)
 * for a constant mask: 6 steps of at most 4 operations per word for any set of bits. */
static void bs_move_masks(uint64_t m, uint64_t mv[6])
{
    uint64_t mk = ~m << 1;
    for (int i = 0; i < 6; i++) {
        uint64_t mp = mk ^ (mk << 1);
        mp ^= mp << 2;
        mp ^= mp << 4;
        mp ^= mp << 8;
        mp ^= mp << 16;
        mp ^= mp << 32;
        mv[i] = mp & m;
        m = (m ^ mv[i]) | (mv[i] >> (1 << i));
        mk &= ~mp;
    }
}

static int bs_ascending(const int64_t *pos, ptrdiff_t k)
{
    for (ptrdiff_t j = 1; j < k; j++)
        if (pos[j] <= pos[j - 1]) return 0;
    return k > 0 && k < 64;
}

/* Fast path for ascending positions: compress each word to its k selected bits, append. */
static void bs_gather_sorted(const uint64_t *words, ptrdiff_t n, const int64_t *pos,
                             ptrdiff_t k, uint8_t *dst)
{
    uint64_t m = 0, mv[6], acc = 0;
    for (ptrdiff_t j = 0; j < k; j++) m |= (uint64_t)1 << pos[j];
    bs_move_masks(m, mv);
    int fill = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        uint64_t x = words[i] & m;
        for (int s = 0; s < 6; s++) {
            uint64_t t = x & mv[s];
            x = (x ^ t) | (t >> (1 << s));
        }
        acc |= x << fill;
        fill += (int)k;
        if (fill >= 64) {
            bs_store(dst, acc, 8);
            dst += 8;
            fill -= 64;
            acc = fill ? x >> (k - fill) : 0;
        }
    }
    if (fill) bs_store(dst, acc, (fill + 7) / 8);
}

static void bs_gather(const uint64_t *words, ptrdiff_t n, const int64_t *pos, ptrdiff_t k,
                      uint8_t *dst)
{
    if (bs_ascending(pos, k)) {
        bs_gather_sorted(words, n, pos, k, dst);
        return;
    }
    uint64_t acc = 0;
    int fill = 0;
    for (ptrdiff_t i = 0; i < n; i++) {
        uint64_t v = words[i];
        for (ptrdiff_t j = 0; j < k; j++) {
            acc |= ((v >> pos[j]) & 1u) << fill;
            if (++fill == 64) {
                bs_store(dst, acc, 8);
                dst += 8;
                acc = 0;
                fill = 0;
            }
        }
    }
    if (fill) bs_store(dst, acc, (fill + 7) / 8);
}

static uint64_t bs_load(const uint8_t *src, ptrdiff_t avail)
{
    uint64_t acc = 0;
    ptrdiff_t nb = avail < 8 ? avail : 8;
    for (ptrdiff_t b = 0; b < nb; b++) acc |= (uint64_t)src[b] << (8 * b);
    return acc;
}

/* Fast path for ascending positions: take k bits, expand them to their positions. */
static void bs_scatter_sorted(const uint8_t *src, ptrdiff_t nbytes, ptrdiff_t n,
                              const int64_t *pos, ptrdiff_t k, uint64_t *out)
{
    uint64_t m = 0, mv[6];
    for (ptrdiff_t j = 0; j < k; j++) m |= (uint64_t)1 << pos[j];
    bs_move_masks(m, mv);
    const uint64_t low = ((uint64_t)1 << k) - 1;
    ptrdiff_t offset = 0;
    uint64_t acc = bs_load(src, nbytes);
    int left = 64;
    for (ptrdiff_t i = 0; i < n; i++) {
        uint64_t x;
        if (left >= k) {
            x = acc & low;
            acc = left > k ? acc >> k : 0;
            left -= (int)k;
        } else {
            x = acc;  /* the low `left` bits */
            offset += 8;
            acc = bs_load(src + offset, nbytes - offset);
            x |= (acc << left) & low;
            acc >>= (k - left);
            left = 64 - (int)(k - left);
        }
        if (left == 0 && i + 1 < n) {
            offset += 8;
            acc = bs_load(src + offset, nbytes - offset);
            left = 64;
        }
        for (int s = 5; s >= 0; s--) {
            uint64_t t = x << (1 << s);
            x = (x & ~mv[s]) | (t & mv[s]);
        }
        out[i] = x & m;
    }
}

static void bs_scatter(const uint8_t *src, ptrdiff_t nbytes, ptrdiff_t n, const int64_t *pos,
                       ptrdiff_t k, uint64_t *out)
{
    if (bs_ascending(pos, k)) {
        bs_scatter_sorted(src, nbytes, n, pos, k, out);
        return;
    }
    ptrdiff_t offset = 0;
    uint64_t acc = bs_load(src, nbytes);
    int left = 64;
    for (ptrdiff_t i = 0; i < n; i++) {
        uint64_t v = 0;
        for (ptrdiff_t j = 0; j < k; j++) {
            if (left == 0) {
                offset += 8;
                acc = bs_load(src + offset, nbytes - offset);
                left = 64;
            }
            v |= (acc & 1u) << pos[j];
            acc >>= 1;
            left--;
        }
        out[i] = v;
    }
}

#endif
