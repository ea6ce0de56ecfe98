/* live.c: DIR/LIVE, the page a writer shares with the readers of other processes, and a
 * read-only handle that follows it (doc/FORMAT.md "DIR/LIVE", doc/GUIDE.md "Many processes").
 *
 * The writer marks on the page where its published events end (the watermark: the last
 * one's seq, segment and end) each time it publishes, and wakes readers asleep on the page's
 * word. A reader takes in the frames between what it has and the mark (bp_store_refresh),
 * checking each one as recovery does, and publishes them to its own handle. It never reads
 * past the mark: what it shows is what the writer had published (for BP_DURABLE appends:
 * synced), whole batches only. */
#include "store/recover.h"
#include "bp_testing.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* A follower without a page (no writer of this version yet) looks for one this often; one
 * with a page looks at the mark again at least this often even without a wake-up. */
#define FOLLOW_LOOK_US 100000u
#define FOLLOW_WAIT_US 250000u
/* Frames are read in chunks of at least this much (and at least one largest frame). */
#define FOLLOW_CHUNK (8u << 20)

static void live_path(const bp_store *s, char *out, size_t cap) {
    snprintf(out, cap, "%s/LIVE", s->dir);
}

/* ---------------------------------------------------------------- writer */

/* [w] The mark of everything published up to seq: its last frame's segment and end. */
static void mark_of(const bp_store *s, uint64_t seq, bp_live_mark *m) {
    const bp_segment *act = &s->segs[s->n_segs - 1];
    m->seq = seq;
    m->compactions = s->live_compactions;
    uint64_t q = seq; /* (the last published event with a frame: a compaction leaves holes) */
    while (q > s->idx.rbase && BP_IREC_HOLE(&BP_XREC(&s->idx, q - 1)))
        q--;
    if (q > s->idx.rbase) {
        const bp_irec *r = &BP_XREC(&s->idx, q - 1);
        m->segno = r->segno;
        m->end = r->offset + r->frame_len;
    } else { /* nothing published in memory: the active segment holds no event yet */
        m->segno = act->segno;
        m->end = BP_SEG_HEADER_SIZE;
    }
}

void bp_live_open(bp_store *s) {
    char path[4200];
    live_path(s, path, sizeof path);
    bp_file f = BP_FILE_INIT;
    uint64_t size = 0, gen = 0;
    uint8_t *p = NULL;
    int e = bp_pf_open(&f, s->fault, path, BP_O_RDWR | BP_O_CREATE);
    if (!e) e = bp_pf_size(&f, &size);
    if (!e && size < BP_LIVE_SIZE) e = bp_pf_truncate(&f, BP_LIVE_SIZE); /* never shrunk */
    if (!e) e = bp_pf_map_shared(&f, BP_LIVE_SIZE, true, &p);
    bp_pf_close(&f); /* the mapping stays */
    if (e) {         /* readers of other processes then see no more than they opened with */
        s->live_err = e;
        return;
    }
    while (!gen)
        if (bp_pf_random(&gen, sizeof gen))
            gen = bp_pf_mono_us() ^ ((uint64_t)bp_pf_getpid() << 40);
    bp_live_init(p, s->ident.uuid, gen, (uint64_t)bp_pf_getpid(), &s->report, sizeof s->report);
    s->live = p;
    s->live_gen = gen;
    bp_live_mark m = {.gen = gen, .state = BP_LIVE_OPEN};
    mark_of(s, s->published, &m);
    bp_live_set_mark(p, &m);
    bp_live_figures(s, true);
    bp_pf_shared_wake(bp_live_word(p)); /* followers of the previous writer: a new one */
}

/* The writer's figures go to the page at most this often (and at fail-stop and close). */
#define FIGS_EVERY_US 10000u

void bp_live_figures(bp_store *s, bool now) {
    if (!s->live || s->read_only) return;
    uint64_t t = bp_pf_mono_us();
    if (!now && t < s->live_figs_next) return;
    s->live_figs_next = t + FIGS_EVERY_US;
    _Static_assert(BP_LIVE_LAT_BUCKETS == BP_LAT_BUCKETS, "the page holds the whole histogram");
    _Static_assert(sizeof(bp_store_open_report) <= BP_LIVE_REPORT_MAX, "and the open report");
    bp_live_figs f;
    memset(&f, 0, sizeof f);
    f.appends = s->appends;
    f.fsyncs = s->fsyncs;
    bp_store_latency(s, f.lat, &f.lat_sum_us);
    f.failed = (uint64_t)(int64_t)s->failed;
    if (s->failed) snprintf(f.failed_msg, sizeof f.failed_msg, "%s", s->failed_msg);
    _Static_assert(BP_STORE_MOD_FIGS == BP_LIVE_MOD_FIGS, "the modules' figures fit the page");
    for (uint32_t i = 0; i < s->n_mods; i++)
        if (s->mstate[i] && s->mods[i]->on_figures) s->mods[i]->on_figures(s, s->mstate[i], f.mods);
    bp_live_set_figures(s->live, &f);
}

void bp_live_publish(bp_store *s, uint64_t seq) {
    if (!s->live || s->read_only) return;
    bp_live_mark m = {.gen = s->live_gen, .state = BP_LIVE_OPEN};
    mark_of(s, seq, &m);
    bp_live_set_mark(s->live, &m);
    bp_live_figures(s, false);
    if (__atomic_load_n(bp_live_sleepers(s->live), __ATOMIC_SEQ_CST))
        bp_pf_shared_wake(bp_live_word(s->live));
}

/* ---------------------------------------------------------------- reader */

/* Map DIR/LIVE when it exists: writable when it opens for writing (the reader then counts
 * itself among the sleepers), else read-only. */
static void live_map(bp_store *s) {
    char path[4200];
    live_path(s, path, sizeof path);
    bp_file f = BP_FILE_INIT;
    bool rw = true;
    int e = bp_pf_open(&f, s->fault, path, BP_O_RDWR);
    if (e == -EACCES || e == -EROFS || e == -EPERM) {
        rw = false;
        e = bp_pf_open(&f, s->fault, path, BP_O_READ);
    }
    uint64_t size = 0;
    uint8_t *p = NULL;
    if (!e && !bp_pf_size(&f, &size) && size >= BP_LIVE_SIZE &&
        !bp_pf_map_shared(&f, BP_LIVE_SIZE, rw, &p)) {
        s->live_rw = rw;
        __atomic_store_n(&s->live, p, __ATOMIC_RELEASE); /* (the follower loads it) */
    }
    bp_pf_close(&f);
}

bp_status bp_live_pin(bp_store *s) {
    s->sf_max = UINT32_MAX; /* (kept segfiles are outside the cache's bound) */
    for (uint32_t i = 0; i < s->n_segs; i++) {
        bp_segment *seg = &s->segs[i];
        if (!seg->sealed && seg->f.fd >= 0) {
            /* the newest, through the descriptor its frames were read with (recovery kept
             * it): followed and read there, whatever a compaction renames in later */
            (void)bp_segfile_adopt(s, i, &seg->f, true); /* (else read by name, as before) */
            bp_pf_close(&s->ffile);
            s->ffile = seg->f;
            s->ffile_segno = seg->segno;
            seg->f = (bp_file)BP_FILE_INIT;
            continue;
        }
        if (!seg->sealed) continue;
        bp_segref ref;
        if (!bp_segment_ref(s, seg->segno, &ref)) continue;
        if (ref.err)
            return bp_err_sys(BP_EIO, ref.err, "%s: segment %06u: cannot open", s->dir, seg->segno);
        uint64_t len = ref.sf->p ? ref.sf->len : seg->size;
        seg->rd_keep = ref.sf->p != NULL; /* (not a descriptor for pread: those are bounded) */
        bp_segref_done(s, &ref);
        if (len != seg->size)
            return bp_err(BP_ECORRUPT,
                          "%s: segment %06u: %llu bytes, but its index describes %llu: the file "
                          "was replaced while the store opened (a compaction)",
                          s->dir, seg->segno, (unsigned long long)len,
                          (unsigned long long)seg->size);
    }
    return BP_OK;
}

/* A reader: the mark on the page, when there is a page of this store (whether or not its
 * writer still runs: a dead writer's mark stays valid, its readers go on where they are). */
static bool live_mark(bp_store *s, bp_live_mark *m) {
    if (!s->live) live_map(s);
    return s->live && bp_live_get_mark(s->live, s->ident.uuid, m);
}

/* m is the mark of the writer that holds the store now (open, and its pid holds the lock):
 * not one a writer killed before it left, which says less than the files hold. */
static bool mark_held(const bp_store *s, const bp_live_mark *m) {
    char lockpath[4200];
    snprintf(lockpath, sizeof lockpath, "%s/LOCK", s->dir);
    return m->state == BP_LIVE_OPEN && (long)m->pid == bp_pf_lock_writer(lockpath);
}

bool bp_live_clamp(bp_store *s, uint64_t *published) {
    bp_live_mark m;
    if (!live_mark(s, &m)) return false;
    s->live_gen = m.gen; /* what this view was made under (refresh reloads when it moves) */
    s->live_compactions = m.compactions;
    if (!mark_held(s, &m)) return false; /* (the files hold what it published, and more) */
    if (m.seq < *published) *published = m.seq;
    return true;
}

bool bp_live_moved(bp_store *s) {
    if (!s->read_only) return false;
    pthread_mutex_lock(&s->wmu);
    bp_live_mark m;
    bool moved = live_mark(s, &m) && (m.gen != s->live_gen || m.compactions != s->live_compactions);
    pthread_mutex_unlock(&s->wmu);
    return moved;
}

/* A reader: the page of the writer that holds the store now. */
static bool live_writer(bp_store *s, bp_live_mark *m) {
    return s->read_only && live_mark(s, m) && mark_held(s, m);
}

bool bp_live_tail_bound(bp_store *s, uint32_t segno, uint64_t *end) {
    bp_live_mark m;
    if (!live_writer(s, &m) || m.segno < segno) return false;
    *end = m.segno == segno ? m.end : UINT64_MAX; /* (a later one: this one is sealed) */
    return true;
}

bool bp_live_writer_figures(bp_store *s, bp_live_figs *f) {
    bp_live_mark m;
    pthread_mutex_lock(&s->wmu); /* (live_mark may map the page) */
    bool ok = live_writer(s, &m) && bp_live_get_figures(s->live, s->ident.uuid, f);
    pthread_mutex_unlock(&s->wmu);
    return ok;
}

bool bp_store_writer_mod_figures(bp_store *s, uint64_t *figs) {
    bp_live_figs f;
    bool ok = s->read_only && bp_live_writer_figures(s, &f);
    for (int i = 0; i < BP_STORE_MOD_FIGS; i++)
        figs[i] = ok ? f.mods[i] : 0;
    return ok;
}

bool bp_store_writer_latency(bp_store *s, uint64_t counts[BP_LAT_BUCKETS], uint64_t *sum_us) {
    bp_live_figs *f = s->read_only ? malloc(sizeof *f) : NULL;
    bool ok = f && bp_live_writer_figures(s, f);
    if (ok) {
        memcpy(counts, f->lat, sizeof f->lat);
        *sum_us = f->lat_sum_us;
    }
    free(f);
    return ok;
}

bp_status bp_store_writer_report(bp_store *s, bp_store_open_report *out) {
    if (!s || !out) return bp_err(BP_EINVAL, "bp_store_writer_report: NULL argument");
    BP_SIZE_CHECK("bp_store_writer_report", out, bp_store_open_report, BP_STORE_OPEN_REPORT_INIT);
    if (!s->read_only) return bp_store_open_report_get(s, out);
    bp_live_mark m;
    pthread_mutex_lock(&s->wmu);
    bool ok = live_writer(s, &m) && bp_live_get_report(s->live, s->ident.uuid, out, sizeof *out);
    pthread_mutex_unlock(&s->wmu);
    if (!ok)
        return bp_err(BP_ENOTFOUND,
                      "%s: no writer of this library version holds the store (or it has not "
                      "finished opening)",
                      s->dir);
    out->struct_size = sizeof *out;
    return BP_OK;
}

static bp_status changed(bp_store *s, uint32_t segno, uint64_t off, const char *why) {
    return bp_err(BP_ECORRUPT,
                  "%s: segment %06u offset %llu: %s, where the writer published events: the "
                  "files changed under this read-only handle (a compaction, or a writer that "
                  "lost unsynced events); open the store again",
                  s->dir, segno, (unsigned long long)off, why);
}

/* [w] A reader: the descriptor of segment segno, kept while it is the one followed. */
static bp_status follow_file(bp_store *s, uint32_t segno, bp_file **out) {
    if (s->ffile.fd >= 0 && s->ffile_segno == segno) {
        *out = &s->ffile;
        return BP_OK;
    }
    bp_pf_close(&s->ffile);
    char path[4200];
    bp_segment_path(s, segno, "", path, sizeof path);
    int e = bp_pf_open(&s->ffile, s->fault, path, BP_O_READ);
    if (e) return bp_err_sys(BP_EIO, e, "%s: cannot open segment to follow it", path);
    s->ffile_segno = segno;
    *out = &s->ffile;
    return BP_OK;
}

/* [w] A reader: take in the frames of its newest segment from where it stopped to `to`:
 * whole, valid, each the next seq, ending with a whole batch. Inserted under ilock. */
static bp_status follow_frames(bp_store *s, uint64_t to) {
    bp_segment *seg = &s->segs[s->n_segs - 1];
    bp_file *f;
    bp_status rc = follow_file(s, seg->segno, &f);
    bp_scanned *v = NULL;
    size_t cap = 0;
    bool in_batch = false;
    uint64_t batch_id = 0;
    uint32_t batch_next = 0;
    while (!rc && seg->size < to) {
        uint64_t from = seg->size, want = to - from;
        uint64_t chunk = FOLLOW_CHUNK > BP_FRAME_MAX_BODY + BP_FRAME_PREFIX
                             ? FOLLOW_CHUNK
                             : BP_FRAME_MAX_BODY + BP_FRAME_PREFIX;
        if (want > chunk) want = chunk;
        s->fbuf.len = 0;
        if (bp_buf_reserve(&s->fbuf, (size_t)want)) {
            rc = bp_err(BP_ENOMEM, "%s: out of memory following the writer", s->dir);
            break;
        }
        ssize_t got = bp_pf_pread(f, s->fbuf.data, (size_t)want, from);
        if (got < 0) {
            rc = bp_err_sys(BP_EIO, (int)got, "%s: segment %06u: cannot read at offset %llu",
                            s->dir, seg->segno, (unsigned long long)from);
            break;
        }
        if ((uint64_t)got < want) {
            rc = changed(s, seg->segno, from + (uint64_t)got, "the file ends");
            break;
        }
        const uint8_t *p = s->fbuf.data;
        size_t n = 0, pos = 0;
        while (!rc && pos < want) {
            uint32_t flen;
            bp_frame_check c = bp_frame_peek(p + pos, (size_t)(want - pos), &flen);
            if (c == BP_FRAME_SHORT && pos && from + want < to) break; /* in the next chunk */
            if (c != BP_FRAME_OK) {
                rc = changed(s, seg->segno, from + pos, "a frame is incomplete or fails its CRC");
                break;
            }
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 256;
                bp_scanned *nv = realloc(v, nc * sizeof *nv);
                if (!nv) {
                    rc = bp_err(BP_ENOMEM, "%s: out of memory following the writer", s->dir);
                    break;
                }
                v = nv;
                cap = nc;
            }
            bp_scanned *sc = &v[n];
            if (bp_frame_decode(p + pos + BP_FRAME_PREFIX, flen - BP_FRAME_PREFIX, &sc->fr)) {
                rc = changed(s, seg->segno, from + pos, "a frame does not decode");
                break;
            }
            const bp_event_fields *fl = &sc->fr.f;
            if (fl->global_seq != s->idx.n + n + 1) {
                rc = changed(s, seg->segno, from + pos, "the frame's global_seq is not the next");
                break;
            }
            if (fl->batch_count) {
                bool ok = in_batch ? fl->batch_id == batch_id && fl->batch_index == batch_next
                                   : fl->batch_index == 0;
                in_batch = fl->batch_index + 1 < fl->batch_count;
                batch_id = fl->batch_id;
                batch_next = fl->batch_index + 1;
                if (!ok) rc = changed(s, seg->segno, from + pos, "a batch frame is out of place");
            } else if (in_batch) {
                rc = changed(s, seg->segno, from + pos, "a batch is incomplete");
            }
            if (rc) break;
            sc->offset = (uint32_t)(from + pos);
            sc->len = flen;
            n++;
            pos += flen;
        }
        if (!rc && pos > want)
            rc = changed(s, seg->segno, from + pos, "a frame runs past the mark");
        if (!rc && n) {
            pthread_rwlock_wrlock(&s->ilock);
            rc = bp_recover_insert(s, seg, v, n);
            pthread_rwlock_unlock(&s->ilock);
        }
        if (!rc) seg->size = from + pos;
    }
    if (!rc && in_batch)
        rc = changed(s, seg->segno, seg->size, "a batch is incomplete at the mark");
    free(v);
    return rc;
}

/* [w] A reader: its newest segment was sealed by the writer, which went on in the next one:
 * take in the rest of its frames (up to its footer), then add the next segment, checking its
 * header. */
static bp_status follow_next_segment(bp_store *s) {
    bp_segment *seg = &s->segs[s->n_segs - 1];
    bool was_sealed = seg->sealed; /* (at the open: mapped and checked then, bp_live_pin) */
    bp_file *f = NULL;             /* (read only when it was not: its frames, its footer) */
    bp_status rc = was_sealed ? BP_OK : follow_file(s, seg->segno, &f);
    uint64_t size = seg->size, foff = 0;
    uint32_t flen = 0;
    uint8_t t[BP_TRAILER_SIZE];
    int e = rc || was_sealed ? 0 : bp_pf_size(f, &size);
    if (rc || e) return rc ? rc : bp_err_sys(BP_EIO, e, "%s: cannot stat a segment", s->dir);
    if (!was_sealed) {
        if (size < BP_SEG_HEADER_SIZE + BP_TRAILER_SIZE ||
            bp_pf_pread(f, t, sizeof t, size - sizeof t) != (ssize_t)sizeof t ||
            !bp_trailer_decode(t, size, &foff, &flen) || foff < seg->size)
            return changed(s, seg->segno, size, "the segment the writer left has no valid trailer");
        if ((rc = follow_frames(s, foff))) return rc;
        if (seg->size != foff)
            return changed(s, seg->segno, seg->size, "frames stop short of the footer");
    }
    /* the next one: read through this descriptor from now on, whatever its name comes to
     * hold (a compaction renames new files in) */
    uint32_t segno = seg->segno + 1;
    char path[4200];
    bp_segment_path(s, segno, "", path, sizeof path);
    bp_file nf = BP_FILE_INIT;
    if ((e = bp_pf_open(&nf, s->fault, path, BP_O_READ)))
        return bp_err_sys(BP_EIO, e, "%s: cannot open segment to follow it", path);
    uint8_t hdr[BP_SEG_HEADER_SIZE];
    bp_seg_header h;
    if (bp_pf_pread(&nf, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr ||
        bp_seg_header_decode(&h, hdr, sizeof hdr, path) || h.segno != segno ||
        memcmp(h.uuid, s->ident.uuid, 16) != 0) {
        bp_pf_close(&nf);
        return changed(s, segno, 0, "the segment header is not the next segment's");
    }
    pthread_rwlock_wrlock(&s->ilock);
    bool room = bp_segs_reserve(s) == 0;
    bp_segfile *grew = NULL;
    if (room) {
        bp_segment *old = &s->segs[s->n_segs - 1];
        old->sealed = true;
        old->size = size;
        s->tier_check = true; /* its records leave memory once its index file is there */
        bp_segment next = {
            .segno = segno, .f = BP_FILE_INIT, .size = BP_SEG_HEADER_SIZE, .first_slot = s->idx.n};
        grew = bp_segs_push(s, &next);
        s->report.segments++;
        /* the sealed one mapped whole, the next one to grow into: both the files followed
         * (bp_live_pin). Failing that, they are opened by name when read. */
        if (was_sealed && grew) { /* (its mapping from the open stays) */
            bp_segment_cache(s, &s->segs[s->n_segs - 2], grew);
            s->segs[s->n_segs - 2].rd_keep = grew->p != NULL;
            grew = NULL;
        } else {
            (void)bp_segfile_adopt(s, s->n_segs - 2, f, false);
        }
        (void)bp_segfile_adopt(s, s->n_segs - 1, &nf, true);
    }
    pthread_rwlock_unlock(&s->ilock);
    bp_segfile_unref(grew); /* (its descriptor goes: the sealed one is mapped anew) */
    if (!room) {
        bp_pf_close(&nf);
        return bp_err(BP_ENOMEM, "%s: out of memory following the writer", s->dir);
    }
    bp_pf_close(&s->ffile);
    s->ffile = nf;
    s->ffile_segno = segno;
    return BP_OK;
}

/* [w] A reader: after a compaction, or under a new writer, or when following met files that
 * changed under it (failed: the mark it followed to), make this handle's view anew from
 * the files as they are (a read-only open of its own), so that it reads the new files and
 * lets the replaced ones go. The new view replaces the old one under ilock as a compaction's
 * index replaces the writer's (iterators and held events go on: the old names stay until
 * close, each held event keeps its file). *done says whether it did: when the open fails
 * (a compaction in the middle of its renames, say) the old view stays and a refresh tries
 * again 100 ms later at the soonest, silently for RELOAD_FAILS_MAX tries, then reporting the
 * open's error at every call until a view is made. BP_ECORRUPT when the files show fewer
 * events than this handle published, or (failed) than the mark of a writer whose page says
 * nothing moved since: damage. */
#define RELOAD_RETRY_US 100000u
#define RELOAD_FAILS_MAX 30 /* (3 s of them) */
void (*bp__refresh_step)(bp_store *s);

static bp_status reload(bp_store *s, const bp_live_mark *failed, bool *done) {
    *done = false;
    /* past RELOAD_FAILS_MAX failures every caller hears the last one, until a view is made */
    bool stuck = s->reload_fails >= RELOAD_FAILS_MAX;
    uint64_t now = bp_pf_mono_us();
    if (now < s->reload_after) return stuck ? bp_err(s->reload_rc, "%s", s->reload_msg) : BP_OK;
    bp_open_options o = s->opts;
    o.read_only = true;
    o.create = false;
    o.on_open = NULL;
    bp_store *t = NULL;
    bp_view *views = realloc(s->old_views, (s->n_old_views + 1) * sizeof *views);
    if (views) s->old_views = views;
    bp_strtab *graves = views ? realloc(s->graves, (s->n_graves + 2) * sizeof *graves) : NULL;
    if (graves) s->graves = graves;
    bp_segfile **drop = graves ? calloc(s->n_segs ? s->n_segs : 1, sizeof *drop) : NULL;
    bp_status orc = drop ? bp_store_open_with(&t, s->dir, &o, s->fault, NULL, 0) : BP_ENOMEM;
    if (orc) {
        free(drop);
        s->reload_after = now + RELOAD_RETRY_US;
        if (!stuck) s->reload_fails++;
        if (s->reload_fails >= RELOAD_FAILS_MAX) { /* not a moment: say why, from now on */
            if (orc == BP_ENOMEM && !drop) bp_err(BP_ENOMEM, "%s: out of memory", s->dir);
            s->reload_rc = orc;
            snprintf(s->reload_msg, sizeof s->reload_msg, "%s", bp_last_error());
            return orc;
        }
        bp_err_clear(); /* (a compaction in the middle of its renames: a moment later) */
        return BP_OK;
    }
    s->reload_fails = 0;
    /* after a follow that failed: when the writer's page says nothing changed since (the same
     * writer, no compaction), the files are damaged where it published, not moved */
    bool damaged = failed && failed->gen == t->live_gen &&
                   failed->compactions == t->live_compactions && t->published < failed->seq;
    if (t->published < s->published || damaged) {
        uint64_t has = t->published;
        bp_store_close(t);
        free(drop);
        if (damaged)
            return bp_err(BP_ECORRUPT,
                          "%s: the files hold %llu events whole, but the writer published %llu: "
                          "they are damaged after seq %llu (bp_store_verify names the place)",
                          s->dir, (unsigned long long)has, (unsigned long long)failed->seq,
                          (unsigned long long)has);
        return bp_err(BP_ECORRUPT,
                      "%s: the files now hold %llu events, fewer than the %llu this read-only "
                      "handle shows (a writer lost events it had published: a power loss, or a "
                      "restore); open the store again",
                      s->dir, (unsigned long long)has, (unsigned long long)s->published);
    }
    uint32_t n_old = s->n_segs;
    bp_segment *old = s->segs;
    pthread_rwlock_wrlock(&s->ilock);
    for (uint32_t i = 0; i < n_old; i++) {
        drop[i] = bp_segment_uncache(s, &old[i]);
        bp_six_detach(&old[i]); /* (no reader looks: ilock) */
        bp_pf_close(&old[i].f);
    }
    bp_index gone = s->idx;
    s->idx = t->idx;
    bp_index_init(&t->idx);
    bp_index_cold_verify(&s->idx, bp_tier_head, s); /* (it named t) */
    bp_index_free_keep_names(&gone, &s->graves[s->n_graves], &s->graves[s->n_graves + 1]);
    s->n_graves += 2;
    s->segs = t->segs;
    s->n_segs = t->n_segs;
    s->segs_cap = t->segs_cap;
    s->n_six = t->n_six;
    s->tier_gen++; /* (other files: walks' hints into the old ones are stale) */
    t->segs = old; /* (emptied: t frees the array) */
    t->n_segs = 0;
    for (uint32_t i = 0; i < s->n_segs; i++) { /* t's segfiles are s's now */
        const bp_segfile *f = s->segs[i].rd;
        if (!f) continue;
        __atomic_add_fetch(&s->sf_cached, 1, __ATOMIC_RELAXED);
        if (f->fd >= 0) __atomic_add_fetch(&s->sf_cached_fd, 1, __ATOMIC_RELAXED);
    }
    bp_anchors a = s->anchors;
    s->anchors = t->anchors;
    t->anchors = a;
    s->old_views[s->n_old_views++] = s->cold_view; /* (the old index's cold names read it) */
    s->cold_view = t->cold_view;
    memset(&t->cold_view, 0, sizeof t->cold_view);
    s->entckpt_segno = t->entckpt_segno;
    uint8_t *cv = s->cv_compact; /* (how its segment files are named) */
    s->cv_compact = t->cv_compact;
    t->cv_compact = cv;
    s->cv_first = t->cv_first;
    s->cv_n = t->cv_n;
    s->live_gen = t->live_gen;
    s->live_compactions = t->live_compactions;
    s->report.events = t->report.events;
    s->report.segments = t->report.segments;
    uint64_t pub = t->published;
    pthread_rwlock_unlock(&s->ilock);
    bp_file ff = s->ffile; /* (the segment followed: the view's own file of it) */
    s->ffile = t->ffile;
    s->ffile_segno = t->ffile_segno;
    t->ffile = ff;
    bp_store_close(t);
    for (uint32_t i = 0; i < n_old; i++)
        bp_segfile_unref(drop[i]); /* events held keep theirs */
    free(drop);
    bp_publish(s, pub);
    *done = true;
    return BP_OK;
}

bp_status bp_store_refresh(bp_store *s, uint64_t *published) {
    if (!s) return bp_err(BP_EINVAL, "bp_store_refresh: NULL store");
    bp_status rc = BP_OK;
    if (s->read_only) {
        pthread_mutex_lock(&s->wmu);
        bp_live_mark m;
        bool have = live_mark(s, &m), reloaded = false;
        if (have && (m.gen != s->live_gen || m.compactions != s->live_compactions)) {
            /* a new writer, or a compaction: a view of their files first (segments may have
             * been renumbered); until one is made, nothing more */
            bool done = false;
            rc = reload(s, NULL, &done);
            if (!done) have = false;
        }
        if (have && m.seq > s->published) {
            if (bp__refresh_step) bp__refresh_step(s);
            while (!rc && s->segs[s->n_segs - 1].segno < m.segno)
                rc = follow_next_segment(s);
            if (!rc && s->segs[s->n_segs - 1].segno == m.segno) rc = follow_frames(s, m.end);
            bool followed = !rc;
            if (rc == BP_ECORRUPT || rc == BP_EIO) {
                /* the files changed under this view since the mark was read (a compaction
                 * renamed new ones in or removed some, or a new writer's recovery finished
                 * one): a view of the files as they are now decides. It fails only when they
                 * hold fewer events than this handle showed, or keep failing to open */
                rc = reload(s, &m, &reloaded);
            }
            uint64_t upto = m.seq < s->idx.n ? m.seq : s->idx.n;
            /* (a reload published its own; a failed follow may have taken in part of a batch) */
            if (!rc && followed && !reloaded) bp_publish(s, upto);
            if (!rc && s->tier_check) s->tier_check = bp_tier_extend(s);
            s->report.events = s->idx.n - s->idx.holes;
        }
        pthread_mutex_unlock(&s->wmu);
    }
    if (published) *published = bp_store_published(s);
    return rc;
}

/* ---------------------------------------------------------------- follower */

static void *follower_main(void *arg) {
    bp_store *s = arg;
    while (!__atomic_load_n(&s->follower_stop, __ATOMIC_ACQUIRE)) {
        /* (s->live is mapped by whichever thread refreshes first: loaded once a round) */
        uint8_t *page = __atomic_load_n(&s->live, __ATOMIC_ACQUIRE);
        uint32_t seen = page ? __atomic_load_n(bp_live_word(page), __ATOMIC_SEQ_CST) : 0;
        /* an error waits for the next look (a cursor's own refresh reports it) */
        bp_status rc = bp_store_refresh(s, NULL);
        if (!page) {
            pthread_mutex_lock(&s->wmu);
            if (!__atomic_load_n(&s->follower_stop, __ATOMIC_ACQUIRE))
                bp_pf_cond_wait_until(&s->fcond, &s->wmu, bp_pf_mono_us() + FOLLOW_LOOK_US);
            pthread_mutex_unlock(&s->wmu);
            continue;
        }
        uint32_t *word = bp_live_word(page);
        if (s->live_rw) __atomic_fetch_add(bp_live_sleepers(page), 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(word, __ATOMIC_SEQ_CST) == seen &&
            !__atomic_load_n(&s->follower_stop, __ATOMIC_ACQUIRE))
            bp_pf_shared_wait(word, seen, rc ? FOLLOW_LOOK_US * 10 : FOLLOW_WAIT_US);
        if (s->live_rw) { /* (never below 0: a new writer may have reset the count) */
            uint32_t *sl = bp_live_sleepers(page), n = __atomic_load_n(sl, __ATOMIC_SEQ_CST);
            while (n && !__atomic_compare_exchange_n(sl, &n, n - 1, false, __ATOMIC_SEQ_CST,
                                                     __ATOMIC_SEQ_CST)) {
            }
        }
    }
    return NULL;
}

void bp_follow_start(bp_store *s) {
    if (!s->read_only || __atomic_load_n(&s->follower_running, __ATOMIC_ACQUIRE)) return;
    pthread_mutex_lock(&s->wmu);
    if (!s->follower_running && pthread_create(&s->follower, NULL, follower_main, s) == 0)
        __atomic_store_n(&s->follower_running, true, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&s->wmu);
}

void bp_live_close(bp_store *s) {
    if (s->follower_running) {
        __atomic_store_n(&s->follower_stop, 1, __ATOMIC_SEQ_CST);
        pthread_mutex_lock(&s->wmu);
        pthread_cond_broadcast(&s->fcond);
        pthread_mutex_unlock(&s->wmu);
        uint8_t *page = __atomic_load_n(&s->live, __ATOMIC_ACQUIRE); /* (may map it now) */
        if (page) bp_pf_shared_wake(bp_live_word(page)); /* (others' followers look again) */
        pthread_join(s->follower, NULL);
        s->follower_running = false;
    }
    if (s->live && !s->read_only) {
        bp_live_figures(s, true);
        bp_live_mark m = {.gen = s->live_gen, .state = BP_LIVE_CLOSED};
        mark_of(s, s->published, &m);
        bp_live_set_mark(s->live, &m);
        bp_pf_shared_wake(bp_live_word(s->live));
    }
    bp_pf_unmap(s->live, BP_LIVE_SIZE);
    s->live = NULL;
    bp_pf_close(&s->ffile);
    bp_buf_free(&s->fbuf);
    for (uint32_t i = 0; i < s->n_old_views; i++)
        bp_pf_view_release(&s->old_views[i]);
    free(s->old_views);
    s->old_views = NULL;
    s->n_old_views = 0;
}
