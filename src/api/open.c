/*
 * open.c — bp_store_open: the store core (store/) with the layers libbatpak builds on it,
 * as modules (api/modules.h gives their order: signing first, delivery last, so that close
 * stops delivery's threads first).
 */
#include "deliver/deliver_impl.h"
#include "guard/guard_impl.h"
#include "typed/typed_impl.h"
#include "bp_testing.h"

static const bp_store_module *const modules[BP_MOD_COUNT] = {
    [BP_MOD_GUARD] = &bp_guard_module,
    [BP_MOD_TYPED] = &bp_typed_module,
    [BP_MOD_DELIVER] = &bp_deliver_module,
};

bp_status bp_store_open(bp_store **out, const char *dir, const bp_open_options *opts) {
    return bp_store_open_with(out, dir, opts, NULL, modules, BP_MOD_COUNT);
}

bp_status bp__store_open_fault(bp_store **out, const char *dir, const bp_open_options *opts,
                               bp_fault *fault) {
    return bp_store_open_with(out, dir, opts, fault, modules, BP_MOD_COUNT);
}
