/*
 * modules.h — internal: the layers libbatpak builds on the store core, in the order
 * bp_store_open (api/open.c) gives them to bp_store_open_with. The index of each is where
 * its state is found (bp_store_module_state); the store core knows none of them.
 */
#ifndef BP_API_MODULES_H
#define BP_API_MODULES_H

enum { BP_MOD_GUARD, BP_MOD_TYPED, BP_MOD_DELIVER, BP_MOD_COUNT };

#endif
