/*
 * The settings grammar (docs/architecture.md) as the preload library reads it: one parser for
 * snaploader_preload.c (SNAPLOADER_DEBUG) and shm.c (SNAPLOADER_SHM, SNAPLOADER_DEBUG).
 */
#ifndef SNAPLOADER_SETTINGS_H
#define SNAPLOADER_SETTINGS_H

#include <stddef.h>

enum snap_switch { SNAP_SWITCH_UNSET, SNAP_SWITCH_OFF, SNAP_SWITCH_ON, SNAP_SWITCH_OTHER };

/* Reads `name` as a switch: surrounding ASCII whitespace ignored, unset or blank = UNSET,
 * 1/true/yes/on = ON and 0/false/no/off = OFF compared ASCII case-insensitively, anything
 * else OTHER, with the trimmed value copied into `shown` (control bytes as spaces, cut to its
 * size) so that the caller can say so; `shown` is left empty otherwise. */
enum snap_switch snap_setting_switch(const char *name, char *shown, size_t shown_size)
    __attribute__((visibility("hidden")));

#endif
