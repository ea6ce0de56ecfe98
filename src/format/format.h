/*
 * format.h — the only code that knows the bytes on disk (doc/FORMAT.md).
 * Pure encode/decode over memory buffers; no I/O.
 */
#ifndef BP_FORMAT_H
#define BP_FORMAT_H

#include "core/core.h"

#define BP_FORMAT_VERSION 1

/* ---- growable byte buffer. Invariant: len <= cap; data is NULL iff cap == 0. */
typedef struct bp_buf {
    uint8_t *data;
    size_t len, cap;
} bp_buf;
int bp_buf_reserve(bp_buf *b, size_t extra); /* 0 or -ENOMEM */
int bp_buf_append(bp_buf *b, const void *p, size_t n);
void bp_buf_free(bp_buf *b);

/* ---- STORE identity file: 48 bytes */
#define BP_STORE_FILE_SIZE 48
typedef struct bp_store_ident {
    uint32_t version;
    uint8_t uuid[16];
    uint64_t created_ms;
} bp_store_ident;
void bp_store_ident_encode(const bp_store_ident *id, uint8_t out[BP_STORE_FILE_SIZE]);
/* BP_ECORRUPT (magic/crc/size), BP_EVERSION (names both versions; id->version then holds
 * the version found). path for messages. */
bp_status bp_store_ident_decode(bp_store_ident *id, const uint8_t *p, size_t n, const char *path);

/* ---- segment header: 48 bytes */
#define BP_SEG_HEADER_SIZE 48
typedef struct bp_seg_header {
    uint32_t version;
    uint32_t segno;
    uint8_t uuid[16];
    uint64_t created_ms;
} bp_seg_header;
void bp_seg_header_encode(const bp_seg_header *h, uint8_t out[BP_SEG_HEADER_SIZE]);
/* BP_ECORRUPT (magic, size, CRC), BP_EVERSION (h->version then holds the version found).
 * Does not check the segment number or UUID against anything: the caller does. */
bp_status bp_seg_header_decode(bp_seg_header *h, const uint8_t *p, size_t n, const char *path);
/* The flags word of a header that bp_seg_header_decode accepted. Version 1 writes 0 and
 * the decoder does not check it; for inspection tools (batpak dump). */
uint32_t bp_seg_header_flags(const uint8_t hdr[BP_SEG_HEADER_SIZE]);

/* A frame's offset in its segment is 32 bits in the index records (bp_irec, footers,
 * checkpoints): every frame must end at or below this offset, so a segment holds at most
 * 4 GiB - 1 bytes of header and frames (about 255 frames of 16 MiB). */
#define BP_SEG_END_MAX UINT32_MAX

/* ---- frames: [len u32 BE][crc32(body) u32 BE][body: MessagePack array of 16] */
#define BP_FRAME_PREFIX 8
#define BP_FRAME_FIELDS 16
#define BP_FRAME_BODY_VERSION 1
/* Smallest body accepted, and the largest: max payload + generous header room. */
#define BP_FRAME_MIN_BODY 16u
#define BP_FRAME_MAX_BODY ((16u << 20) + 4096u)

typedef struct bp_frame {
    bp_event_fields f; /* pointers refer into the decoded body */
    bp_hash event_hash;
} bp_frame;

/* Append the encoded frame (prefix + body) to b. 0 or -ENOMEM. */
int bp_frame_encode(bp_buf *b, const bp_frame *fr);

typedef enum bp_frame_check {
    BP_FRAME_OK = 0,
    BP_FRAME_SHORT = 1, /* fewer bytes than the prefix or the declared length */
    BP_FRAME_BAD = 2    /* absurd length or CRC mismatch */
} bp_frame_check;
/* Check the frame at p (avail bytes): prefix, length bound, CRC. *frame_len =
 * total frame length (prefix + body) when the declared length is in range, else 0. So:
 *   SHORT, *frame_len == 0: fewer than BP_FRAME_PREFIX bytes;
 *   SHORT, *frame_len != 0: the frame runs past avail;
 *   BAD,   *frame_len == 0: body length out of range;
 *   BAD,   *frame_len != 0: CRC mismatch. */
bp_frame_check bp_frame_peek(const uint8_t *p, size_t avail, uint32_t *frame_len);

/* The body length the prefix at p declares, whether in range or not; 0 when avail is
 * shorter than the prefix. For diagnostics: bp_frame_peek decides validity. */
uint32_t bp_frame_body_len(const uint8_t *p, size_t avail);

/* Find the first offset in [from, end) of p where a valid frame starts (its body starts
 * like every frame body, with the 16-field array marker, and bp_frame_peek says OK within
 * p[0..end)). Tells a torn tail (nothing valid after the damage) from corruption (valid
 * frames follow). True with *at (if not NULL) set when there is one. */
bool bp_frame_find(const uint8_t *p, size_t from, size_t end, size_t *at);

/* Decode a body (without prefix). BP_ECORRUPT with a message on any structural
 * problem. Pointers in out refer into body; entity/scope/idem are NOT NUL-terminated. */
bp_status bp_frame_decode(const uint8_t *body, size_t len, bp_frame *out);

/* ---- index block: the shared body of SIDX footers and index.ckpt */
typedef struct bp_irec {
    bp_id id;
    uint64_t hlc;
    uint32_t segno;
    uint32_t offset;    /* of the frame prefix within its segment */
    uint32_t frame_len; /* prefix + body */
    uint32_t entity;    /* index into the entity table */
    uint32_t scope;     /* index into the scope table */
    uint16_t kind;
    uint16_t flags;
} bp_irec;
#define BP_IREC_SIZE 48

typedef struct bp_iname {
    const char *name; /* NUL-terminated */
    uint16_t len;
} bp_iname;

typedef struct bp_iidem {
    uint32_t rec; /* record index within the block */
    const char *key;
    uint16_t len;
} bp_iidem;

/* A decoded (or to-be-encoded) block. Decoded names/keys point into the
 * decoder's buffer copy (block->strings), owned by the block. */
typedef struct bp_iblock {
    uint64_t first_seq;
    bp_irec *recs;
    uint32_t n_recs;
    bp_iname *entities;
    bp_hash *entity_heads; /* hash of each entity's last event in the block */
    uint32_t n_entities;
    bp_iname *scopes;
    uint32_t n_scopes;
    bp_iidem *idems;
    uint32_t n_idems;
    /* NULL: dense, record i is the event with global_seq first_seq + i. Otherwise (a block
     * of a compacted segment) one strictly ascending global_seq per record, seqs[0] ==
     * first_seq; encoded after the idempotency keys, and the footer or checkpoint that
     * holds the block then has version 2. Owned by the block (bp_iblock_free). */
    uint64_t *seqs;
    char *strings; /* decoder-owned string storage */
    /* NULL, or (a block an index lends for encoding, bp_index_export_view) recs are the
     * index's own records, numbering entities and scopes the index's way: the encoder writes
     * emap[entity] and smap[scope]. Never set in a decoded block. */
    uint32_t *emap, *smap;
} bp_iblock;
int bp_iblock_encode(bp_buf *b, const bp_iblock *blk);
bp_status bp_iblock_decode(bp_iblock *blk, const uint8_t *p, size_t n, const char *what);
void bp_iblock_free(bp_iblock *blk);

/* ---- SIDX footer appended to a sealed segment:
 * "SIDX" u16 ver u16 0 u32 body_len | body (index block) | crc32 u32 | trailer 16 bytes:
 * u64 footer_offset | u32 footer_len | "SEAL" */
#define BP_TRAILER_SIZE 16
int bp_footer_encode(bp_buf *b, const bp_iblock *blk, uint64_t footer_offset);
/* Given the last 16 bytes of a segment of size file_size: footer offset and length.
 * Returns false when the trailer is not there (segment not sealed). */
bool bp_trailer_decode(const uint8_t t[BP_TRAILER_SIZE], uint64_t file_size, uint64_t *off,
                       uint32_t *len);
/* A sealed segment whose trailer is damaged: find an intact footer (magic, length and CRC)
 * that ends exactly BP_TRAILER_SIZE bytes before file_size, searching backwards from the
 * end. True with its offset and length; false when there is none. */
bool bp_footer_find(const uint8_t *data, uint64_t file_size, uint64_t *off, uint32_t *len);
/* The 16-byte trailer for a footer at off of len bytes. */
void bp_trailer_encode(uint8_t t[BP_TRAILER_SIZE], uint64_t off, uint32_t len);
/* BP_ECORRUPT (magic, length, CRC, malformed block), BP_EVERSION. p/n: the footer_len bytes
 * at footer_offset. Use bp_crc_tail_ok(p, n) to tell a damaged footer (a cache miss: open
 * rebuilds the segment from its frames) from one with an intact CRC that does not decode. */
bp_status bp_footer_decode(bp_iblock *blk, const uint8_t *p, size_t n, const char *path);

/* ---- index checkpoint file */
typedef struct bp_ckpt_meta {
    uint8_t uuid[16];
    uint32_t covered_segno;  /* last segment covered */
    uint64_t covered_offset; /* end of the last covered frame in it */
    uint64_t last_hlc;
    bp_id last_id;
} bp_ckpt_meta;
int bp_ckpt_encode(bp_buf *b, const bp_ckpt_meta *m, const bp_iblock *blk);
bp_status bp_ckpt_decode(bp_ckpt_meta *m, bp_iblock *blk, const uint8_t *p, size_t n,
                         const char *path);

uint32_t bp_crc32(const void *p, size_t n);
/* CRC32 continued from crc (a previous result; 0 to start). */
uint32_t bp_crc32_update(uint32_t crc, const void *p, size_t n);
/* zlib's crc32 alone: the reference the tests compare bp_crc32 with. */
uint32_t bp_crc32_zlib(const void *p, size_t n);
/* Every checksummed structure ends with the CRC32 (u32 BE) of the bytes before it: STORE
 * (n = BP_STORE_FILE_SIZE), segment header (n = BP_SEG_HEADER_SIZE), SIDX footer
 * (n = footer_len) and index.ckpt (n = file size). True when p[0..n) carries an intact
 * CRC; false when n < 4. */
bool bp_crc_tail_ok(const uint8_t *p, size_t n);

/* ---- compaction: DIR/ANCHORS and the DIR/COMPACT manifest (doc/FORMAT.md "Compaction").
 * An anchor stands for an entity's removed prefix: the clock and event_hash of its last
 * removed event. Invariant of a decoded set: entities distinct, clocks >= 1,
 * first_segno <= last_segno + 1, upto >= 1 when n > 0. */
typedef struct bp_anchor {
    const char *entity; /* NUL-terminated */
    uint16_t len;
    uint64_t clock;
    bp_hash hash;
} bp_anchor;
typedef struct bp_anchors {
    uint32_t first_segno; /* the store's first segment */
    uint32_t last_segno;  /* segments <= it are compacted (their seqs may have holes) */
    uint64_t upto;        /* global_seqs <= upto may be missing; above it they are dense */
    bp_anchor *v;
    uint32_t n;
    char *strings; /* decoder-owned */
} bp_anchors;
int bp_anchors_encode(bp_buf *b, const bp_anchors *a); /* 0 or -ENOMEM */
/* The "format" of an export's anchors record (FORMAT.md "The anchors record"). */
#define BP_EXPORT_ANCHORS_FORMAT "batpak-anchors-v1"
/* BP_ECORRUPT / BP_EVERSION with the reason. Strings are copied (bp_anchors_free). */
bp_status bp_anchors_decode(bp_anchors *a, const uint8_t *p, size_t n, const char *path);
void bp_anchors_free(bp_anchors *a);

/* The manifest: segments old_first..old_last are replaced by new_first..old_last (n_new =
 * old_last - new_first + 1, possibly 0), whose files have the sizes and CRC32s listed, and
 * the store's anchors become the ANCHORS file embedded (anchors[0..anchors_len)). */
typedef struct bp_cmanifest {
    uint32_t old_first, old_last, new_first, n_new;
    uint64_t *sizes;
    uint32_t *crcs;
    const uint8_t *anchors; /* decoded: points into the input */
    size_t anchors_len;
} bp_cmanifest;
int bp_cmanifest_encode(bp_buf *b, const bp_cmanifest *m); /* 0 or -ENOMEM */
/* Pointers refer into p (sizes and crcs are allocated: bp_cmanifest_free). */
bp_status bp_cmanifest_decode(bp_cmanifest *m, const uint8_t *p, size_t n, const char *path);
void bp_cmanifest_free(bp_cmanifest *m);

/* ---- SYSTEM_DENIAL payload (denial.c; decoded by the public bp_denial_record_decode).
 * n must be 1..BP_DENIALS_MAX. 0 or -1 (out of memory). */
int bp_denial_payload_encode(bp_buf *b, uint16_t kind, const bp_hash *digest,
                             const bp_denial *denials, size_t n);

/* ---- projection snapshot files:
 * "BPPJ" | u32 1 | name u16+bytes | version u32 | entity u16+bytes | clock u64 |
 * head[32] (event_hash at clock) | state_size u64 | state | crc32 u32 of all before */
typedef struct bp_projsnap {
    const char *name;
    size_t name_len;
    uint32_t version;
    const char *entity;
    size_t entity_len;
    uint64_t clock;
    bp_hash head;
    const uint8_t *state;
    uint64_t state_size;
} bp_projsnap;
int bp_projsnap_encode(bp_buf *b, const bp_projsnap *s); /* 0 or -ENOMEM */
/* Pointers in out refer into p. BP_ECORRUPT / BP_EVERSION with the reason. */
bp_status bp_projsnap_decode(const uint8_t *p, size_t n, bp_projsnap *out);

/* ---- cursor checkpoint files: "BPCU" | u32 1 | position u64 | event_id[16] of the event
 * at position (zeros when 0) | crc32 u32 of the 32 bytes before */
#define BP_CURSORCK_SIZE 36
void bp_cursorck_encode(uint8_t out[BP_CURSORCK_SIZE], uint64_t position, const bp_id *id);
/* BP_ECORRUPT / BP_EVERSION with the reason. */
bp_status bp_cursorck_decode(const uint8_t *p, size_t n, uint64_t *position, bp_id *id);

/* ---- data key files (crypto-shredding): "BPDK" | u16 1 | u16 entity_len | entity |
 * key_id[8] | key[32] | crc32 u32 of everything before. Named by BP_DKEY_NAME: the first
 * 16 bytes of BLAKE3(entity) in hex, then ".key". A sealed payload (frame flag
 * BP_EVENT_SEALED) is key_id[8] | nonce[24] | crypto_secretbox_easy(plaintext). */
#define BP_DKEY_ID_SIZE 8
#define BP_DKEY_SIZE 32
#define BP_DKEY_NONCE_SIZE 24
#define BP_SEAL_OVERHEAD (BP_DKEY_ID_SIZE + BP_DKEY_NONCE_SIZE + 16)
#define BP_DKEY_NAME_SIZE 37 /* 32 hex + ".key" + NUL */
#define BP_DKEY_FILE_MAX (8 + BP_COORD_MAX + BP_DKEY_ID_SIZE + BP_DKEY_SIZE + 4)
typedef struct bp_dkey {
    uint8_t id[BP_DKEY_ID_SIZE];
    uint8_t key[BP_DKEY_SIZE];
} bp_dkey;
/* Writes BP_DKEY_FILE_MAX bytes at most; returns the length. */
size_t bp_dkey_file_encode(uint8_t *out, const char *entity, size_t elen, const bp_dkey *k);
/* BP_ECORRUPT / BP_EVERSION with the reason, also when the file names another entity. */
bp_status bp_dkey_file_decode(const uint8_t *p, size_t n, const char *entity, size_t elen,
                              bp_dkey *k);
void bp_dkey_file_name(const char *entity, size_t elen, char out[BP_DKEY_NAME_SIZE]);

/* ---- DIR/LIVE: the page a live writer shares with readers (live.c, doc/FORMAT.md "DIR/LIVE").
 * Offsets of its fields; all in the host's byte order, aligned, read and written with atomics. */
#define BP_LIVE_SIZE 8192
#define BP_LIVE_FORMAT 1
#define BP_LIVE_VERSION 8      /* u32 */
#define BP_LIVE_WORD 12        /* u32: the wake-up word, + 1 at every mark */
#define BP_LIVE_SLEEPERS 16    /* u32: readers asleep on the word */
#define BP_LIVE_UUID 24        /* 16 bytes: the store's */
#define BP_LIVE_GEN 40         /* u64: the writer's open (random, not 0); 0: not ready */
#define BP_LIVE_PID 48         /* u64 */
#define BP_LIVE_LOCK 56        /* u64: odd while the mark below is being written */
#define BP_LIVE_SEQ 64         /* u64: the published watermark */
#define BP_LIVE_SEGNO 72       /* u32: the segment of its last frame */
#define BP_LIVE_END 76         /* u32: where that frame ends */
#define BP_LIVE_STATE 80       /* u32: BP_LIVE_OPEN or BP_LIVE_CLOSED */
#define BP_LIVE_COMPACTIONS 84 /* u32: compactions this writer finished */
#define BP_LIVE_OPEN 1
#define BP_LIVE_CLOSED 2
/* The writer's figures, a second sequence lock's block (bp_live_set_figures): */
#define BP_LIVE_FIGS_LOCK 256 /* u64 */
#define BP_LIVE_FIGS 264      /* u64 words: appends, fsyncs, latency sum (us), failed status */
#define BP_LIVE_MODS 296 /* u64 words [BP_LIVE_MOD_FIGS]: the figures the writer's modules give */
#define BP_LIVE_MOD_FIGS 6
#define BP_LIVE_FAILED_MSG 512 /* 256 bytes: why it fail-stopped, NUL-terminated */
#define BP_LIVE_REPORT_LEN 768 /* u32: the bytes of the open report at BP_LIVE_REPORT */
#define BP_LIVE_REPORT 776     /* the writer's open report (host layout), set before the gen */
#define BP_LIVE_REPORT_MAX 1264
#define BP_LIVE_LAT 2048 /* u64 [BP_LIVE_LAT_BUCKETS]: append latency histogram */
#define BP_LIVE_LAT_BUCKETS 512
typedef struct bp_live_figs {
    uint64_t appends, fsyncs, lat_sum_us, failed;
    uint64_t mods[BP_LIVE_MOD_FIGS]; /* opaque here: the layers above say what each means */
    uint64_t lat[BP_LIVE_LAT_BUCKETS];
    char failed_msg[256];
} bp_live_figs;
/* The writer: its figures, under their lock. A reader: them, or false (no ready page of this
 * store, or a writer stopped half way through). */
void bp_live_set_figures(uint8_t *p, const bp_live_figs *f);
bool bp_live_get_figures(const uint8_t *p, const uint8_t uuid[16], bp_live_figs *f);
/* The writer's open report: set by bp_live_init (len <= BP_LIVE_REPORT_MAX), read back into
 * out (len bytes at most; false as bp_live_get_figures says). */
bool bp_live_get_report(const uint8_t *p, const uint8_t uuid[16], void *out, size_t len);
typedef struct bp_live_mark {
    uint64_t gen, pid, seq;
    uint32_t segno, end, state, compactions;
} bp_live_mark;
/* Start the page of a new writer's open: every field anew, generation gen last. */
void bp_live_init(uint8_t *p, const uint8_t uuid[16], uint64_t gen, uint64_t pid,
                  const void *report, size_t report_len);
/* The writer (one thread at a time): store m's seq, segno, end, state and compactions, then
 * bump the word. */
void bp_live_set_mark(uint8_t *p, const bp_live_mark *m);
/* A reader: the mark as a whole, or false when the page is not a ready one of this store. */
bool bp_live_get_mark(const uint8_t *p, const uint8_t uuid[16], bp_live_mark *m);
uint32_t *bp_live_word(uint8_t *p);
uint32_t *bp_live_sleepers(uint8_t *p);

#endif
