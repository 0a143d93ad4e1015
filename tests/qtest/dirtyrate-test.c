/*
 * QTest for guest dirty-rate measurement: calc-dirty-rate,
 * query-dirty-rate and their HMP counterparts, in page-sampling,
 * dirty-bitmap and dirty-ring modes, under TCG and KVM.
 *
 * The tests of each topic are in migration/dirtyrate-*-tests.c, their
 * fixture in migration/dirtyrate-framework.c.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "migration/dirtyrate-framework.h"

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    dirtyrate_test_add_sampling();
    dirtyrate_test_add_accuracy();
    dirtyrate_test_add_ring();
    dirtyrate_test_add_migration();
    dirtyrate_test_add_validation();
    dirtyrate_test_add_hmp();
    dirtyrate_test_add_events();

    return g_test_run();
}
