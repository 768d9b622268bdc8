/*
 * mod_misdirect: the former name of misdirect_private.h, for the files
 * that still include it.
 *
 * Licensed under the Apache License, Version 2.0.
 */

#include "misdirect_private.h"
