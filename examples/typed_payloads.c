/*
 * typed_payloads: declare a payload type once, as an X-macro field list, and get a C struct,
 * its MessagePack codec, its JSON form, typed appends and typed reads. An upcaster reads what
 * an older version of the program wrote (schema v1) as the current type (v2).
 *
 * What to look at:
 *   - ITEM_ADDED: each F(shape, type, name, bound) line becomes struct members (see the
 *     comments); BP_TYPE_STATIC binds the struct to a name, a kind and a schema version
 *   - bp_type_encode / bp_type_decode on plain buffers, and bp_type_to_json
 *   - a value over its bounds, and a payload missing a field, are refused naming the field
 *   - bp_append_typed records the schema version in the event; typed reads upcast v1 to v2
 *
 *   usage: typed_payloads DIR      (re-runnable: each run fills a new cart)
 */
#include <batpak/batpak.h>

#include <stdio.h>
#include <string.h>

/* Version 1, as an older program wrote it: whole euros. */
#define ITEM_ADDED_V1(F)                                                                           \
    F(ONE, STR, sku, 16)                                                                           \
    F(ONE, U32, qty, 0)                                                                            \
    F(ONE, U32, price_euros, 0)
BP_TYPE_STATIC(item_added_v1, ITEM_ADDED_V1, "cart.item_added", BP_KIND(3, 1), 1);

/* Version 2, the current one. */
#define ITEM_ADDED(F)                                                                              \
    F(ONE, STR, sku, 16)        /* char sku[17];                                    */             \
    F(ONE, U32, qty, 0)         /* uint32_t qty;                                    */             \
    F(ONE, I64, price_cents, 0) /* int64_t price_cents;                             */             \
    F(OPT, STR, gift_note, 64)  /* bool has_gift_note; char gift_note[65];          */             \
    F(ARR, U16, coupons, 4)     /* uint32_t coupons_count; uint16_t coupons[4];     */
BP_TYPE_STATIC(item_added, ITEM_ADDED, "cart.item_added", BP_KIND(3, 1), 2);

/* v1 -> v2: `to` arrives zeroed (no gift note, no coupons). */
static bp_status v1_to_v2(void *ctx, const void *from, void *to) {
    (void)ctx;
    const item_added_v1 *old = from;
    item_added *now = to;
    memcpy(now->sku, old->sku, sizeof now->sku);
    now->qty = old->qty;
    now->price_cents = (int64_t)old->price_euros * 100;
    return BP_OK;
}

static int fail(const char *what) {
    fprintf(stderr, "typed_payloads: %s: %s\n", what, bp_last_error());
    return 1;
}

static int wrong(const char *what) {
    fprintf(stderr, "typed_payloads: %s\n", what);
    return 1;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "./typed-data";
    /* 1. the codec on plain buffers: encode, decode, encode again gives the same bytes */
    item_added tea = {.sku = "tea-earl-grey", .qty = 2, .price_cents = 450};
    tea.has_gift_note = true;
    strcpy(tea.gift_note, "for Ada");
    tea.coupons_count = 2;
    tea.coupons[0] = 7;
    tea.coupons[1] = 12;
    uint8_t buf[256], again[256];
    size_t len, len2;
    item_added back;
    char *json;
    if (bp_type_encode(&item_added_type, buf, sizeof buf, &len, &tea) ||
        bp_type_decode(&item_added_type, &back, buf, len) ||
        bp_type_encode(&item_added_type, again, sizeof again, &len2, &back) ||
        bp_type_to_json(&item_added_type, &json, &back))
        return fail("codec");
    printf("codec     %zu bytes of MessagePack (at most %zu for this type), as JSON: %s\n", len,
           bp_type_encoded_max(&item_added_type), json);
    const char *expect = "{\"sku\":\"tea-earl-grey\",\"qty\":2,\"price_cents\":450,"
                         "\"gift_note\":\"for Ada\",\"coupons\":[7,12]}";
    int bad = strcmp(json, expect) != 0;
    bp_free(json);
    if (bad) return wrong("the JSON form is not the expected one");
    if (len2 != len || memcmp(buf, again, len) != 0) return wrong("decode/encode changed bytes");

    /* 2. bad values and bad payloads are refused, naming the field */
    tea.coupons_count = 5; /* the bound is 4 */
    if (bp_type_encode(&item_added_type, buf, sizeof buf, &len, &tea) != BP_EINVAL)
        return wrong("5 coupons were accepted");
    printf("refused   %s\n", bp_last_error());
    static const uint8_t only_sku[] = {0x81, 0xa3, 's', 'k', 'u', 0xa3, 't', 'e', 'a'};
    if (bp_type_decode(&item_added_type, &back, only_sku, sizeof only_sku) != BP_EINVAL)
        return wrong("a payload without qty was accepted");
    printf("refused   %s\n", bp_last_error());

    /* 3. in a store: the old program wrote a v1 item, the current one writes v2 */
    bp_store *s;
    bp_store_diagnostics d = BP_STORE_DIAGNOSTICS_INIT;
    if (bp_store_open(&s, dir, NULL) || bp_store_diagnostics_get(s, &d)) return fail("open");
    char cart[64];
    snprintf(cart, sizeof cart, "cart:%llu",
             (unsigned long long)d.published_seq); /* new each run */
    item_added_v1 old = {.sku = "mug", .qty = 1, .price_euros = 12};
    tea.coupons_count = 2;
    if (bp_append_typed(s, NULL, cart, "shop", &item_added_v1_type, &old, NULL) ||
        bp_append_typed(s, NULL, cart, "shop", &item_added_type, &tea, NULL))
        return fail("append");
    /* the current program registers v2 and how to read v1 as v2 */
    if (bp_register_type(s, &item_added_type) ||
        bp_register_upcaster(s, &item_added_v1_type, &item_added_type, v1_to_v2, NULL))
        return fail("register");

    bp_iter *it;
    const bp_event *ev;
    item_added item;
    int64_t total = 0;
    unsigned versions[2] = {0, 0}, n = 0;
    bp_status rc;
    if (bp_stream(s, &it, cart, BP_READ_FULL)) return fail("stream");
    while ((rc = bp_iter_next_typed(it, &ev, &item, &item_added_type)) == BP_OK) {
        if (bp_event_json(s, &json, ev)) return fail("json");
        printf("%s   clock %llu, schema v%u on disk, reads as %s\n", cart,
               (unsigned long long)ev->clock, BP_EVENT_SCHEMA_VERSION(ev->flags), json);
        bp_free(json);
        if (n < 2) versions[n] = BP_EVENT_SCHEMA_VERSION(ev->flags);
        n++;
        total += item.price_cents * item.qty;
    }
    bp_iter_free(it);
    if (rc != BP_DONE) return fail("typed read");
    printf("total     %lld cents for %u items\n", (long long)total, n);
    if (n != 2 || versions[0] != 1 || versions[1] != 2 || total != 1200 + 900)
        return wrong("the cart does not read back as written");
    return bp_store_close(s) ? fail("close") : 0;
}
