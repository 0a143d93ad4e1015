/*
 * QTest for guest dirty-rate measurement: bad input to
 * calc-dirty-rate and its HMP command is refused and changes nothing, and
 * a second measurement is refused while one runs.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "qapi/error.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qobject/qlist.h"
#include "migration/dirtyrate-framework.h"

static void test_query_before_calc(DirtyGuest *dg, const DirtyrateCase *c)
{
    QDict *info;

    info = dirtyrate_query(dg->qts);
    g_assert_cmpstr(qdict_get_str(info, "status"), ==, "unstarted");
    g_assert_false(qdict_haskey(info, "dirty-rate"));
    g_assert_false(qdict_haskey(info, "vcpu-dirty-rate"));
    qobject_unref(info);
}

#define TIME_ERROR    "Calculation time is out of range [50ms, 60000ms]"
#define SAMPLES_ERROR "sample-pages is out of range[128, 16384]"

static void test_bad_input_keeps_result(DirtyGuest *dg, const DirtyrateCase *c)
{
    /* the error each calc-dirty-rate with these arguments (JSON) gives */
    static const struct {
        const char *expect;
        const char *args;
    } bad[] = {
        { TIME_ERROR, "{ 'calc-time': 0 }" },
        { TIME_ERROR, "{ 'calc-time': -1 }" },
        { TIME_ERROR, "{ 'calc-time': 61 }" },
        /* huge values must not wrap into range when turned into ms */
        { TIME_ERROR, "{ 'calc-time': 18446744073709602 }" },
        { TIME_ERROR, "{ 'calc-time': 9223372036854775807 }" },
        { TIME_ERROR, "{ 'calc-time': -9223372036854775808 }" },
        { TIME_ERROR, "{ 'calc-time': -18446744073709551 }" },
        { TIME_ERROR,
          "{ 'calc-time': 9223372036854775807, "
          "'calc-time-unit': 'millisecond' }" },
        { "'calc-time'", "{ 'calc-time': 18446744073709551615 }" },
        { "'calc-time'", "{ 'calc-time': '1' }" },
        { "'calc-time'", "{ 'calc-time': 1.5 }" },
        { "'calc-time-unit'", "{ 'calc-time': 1, 'calc-time-unit': 'hour' }" },
        { TIME_ERROR, "{ 'calc-time': 49, 'calc-time-unit': 'millisecond' }" },
        { TIME_ERROR,
          "{ 'calc-time': 60001, 'calc-time-unit': 'millisecond' }" },
        { SAMPLES_ERROR, "{ 'calc-time': 1, 'sample-pages': 127 }" },
        { SAMPLES_ERROR, "{ 'calc-time': 1, 'sample-pages': 16385 }" },
        { SAMPLES_ERROR, "{ 'calc-time': 1, 'sample-pages': 0 }" },
        { SAMPLES_ERROR, "{ 'calc-time': 1, 'sample-pages': -1 }" },
        { SAMPLES_ERROR,
          "{ 'calc-time': 1, 'sample-pages': 9223372036854775807 }" },
        { "'per-block'", "{ 'calc-time': 1, 'per-block': 1 }" },
        { "'calc-time'", "{ }" },
        { "sample-pages is used only in page-sampling mode",
          "{ 'calc-time': 1, 'sample-pages': 512, 'mode': 'dirty-bitmap' }" },
        { "mode dirty-ring is not enabled",
          "{ 'calc-time': 1, 'mode': 'dirty-ring' }" },
        { "'mode'", "{ 'calc-time': 1, 'mode': 'dirty-everything' }" },
    };
    QDict *prev;
    int i;

    dirtyrate_calc(dg->qts, NULL, 100, 0);
    prev = dirtyrate_wait(dg->qts);
    g_assert_cmpstr(qdict_get_str(prev, "status"), ==, "measured");

    for (i = 0; i < ARRAY_SIZE(bad); i++) {
        dirtyrate_assert_calc_fails(dg->qts, prev, bad[i].expect,
                                    bad[i].args);
    }
    qobject_unref(prev);
}

/* What no rejected command may change: the dirty rate and the recorder */
static QDict *monitored_state(QTestState *qts)
{
    QDict *state = qdict_new();

    qdict_put(state, "dirty-rate", dirtyrate_query(qts));
    qdict_put(state, "checkpoint",
              qtest_qmp_assert_success_ref(qts,
                                           "{ 'execute': 'info_checkpoint' }"));
    return state;
}

static void assert_state_unchanged(QDict *before, QDict *after)
{
    QDict *cb = qdict_get_qdict(before, "checkpoint");
    QDict *ca = qdict_get_qdict(after, "checkpoint");

    dirtyrate_assert_same_result(qdict_get_qdict(before, "dirty-rate"),
                                 qdict_get_qdict(after, "dirty-rate"));
    g_assert_cmpint(qdict_get_int(cb, "tot_num"), ==,
                    qdict_get_int(ca, "tot_num"));
    g_assert_cmpstr(qdict_get_str(cb, "role"), ==, qdict_get_str(ca, "role"));
}

/* Send @cmd with @args (JSON); it must fail, naming @expect if not NULL */
static void assert_command_fails(QTestState *qts, QDict *before,
                                 const char *cmd, const char *args,
                                 const char *expect)
{
    QDict *rsp, *after;
    const char *desc;

    rsp = qtest_qmp(qts, "{ 'execute': %s, 'arguments': %p }", cmd,
                    qobject_from_json(args, &error_abort));
    if (!qdict_haskey(rsp, "error")) {
        g_error("%s %s was accepted", cmd, args);
    }
    desc = qdict_get_str(qdict_get_qdict(rsp, "error"), "desc");
    if (expect && !strstr(desc, expect)) {
        g_error("%s %s: error '%s', expected '%s'", cmd, args, desc, expect);
    }
    qobject_unref(rsp);
    after = monitored_state(qts);
    assert_state_unchanged(before, after);
    qobject_unref(after);
}

/* JSON values of every type but @json_type (query-qmp-schema's names) */
static const char *const *wrong_values(const char *json_type)
{
    static const char *const for_int[] = {
        "'1'", "true", "1.5", "{}", "[]", "null",
        "18446744073709551616", NULL
    };
    static const char *const for_string[] = {
        "1", "true", "{}", "[]", "null", "'no-such-value'", NULL
    };
    static const char *const for_bool[] = {
        "1", "'true'", "{}", "[]", "null", NULL
    };
    static const char *const for_other[] = { "1", "'x'", "null", NULL };

    if (g_str_equal(json_type, "int")) {
        return for_int;
    } else if (g_str_equal(json_type, "string")) {
        return for_string;
    } else if (g_str_equal(json_type, "boolean")) {
        return for_bool;
    }
    return for_other;
}

static const char *json_type_of(GHashTable *types, const char *name)
{
    QDict *t = g_hash_table_lookup(types, name);
    const char *meta = qdict_get_str(t, "meta-type");

    if (g_str_equal(meta, "builtin")) {
        return qdict_get_str(t, "json-type");
    } else if (g_str_equal(meta, "enum")) {
        return "string";
    }
    return meta;
}

/*
 * Every argument of the dirty-rate and checkpoint recorder commands,
 * given a value of the wrong type, and every such command given an
 * argument it does not have: a clear error, and nothing changes.  The
 * arguments and their types come from query-qmp-schema, so new members
 * are covered as they are added.  Out-of-range values are in
 * test_bad_input_keeps_result.
 */
static void test_bad_input_table(DirtyGuest *dg, const DirtyrateCase *c)
{
    static const struct {
        const char *name;
        const char *base;           /* valid arguments to start from */
    } commands[] = {
        { "calc-dirty-rate", "{ 'calc-time': 1 }" },
        { "query-dirty-rate", "{}" },
        { "cancel-dirty-rate", "{}" },
        { "info_checkpoint", "{}" },
        { "reset_checkpoint", "{}" },
    };
    g_autoptr(GHashTable) types = NULL;
    const QListEntry *e;
    QDict *schema, *before;
    int i, checked = 0;

    dirtyrate_calc(dg->qts, NULL, 100, 0);
    qobject_unref(dirtyrate_wait(dg->qts));
    before = monitored_state(dg->qts);

    schema = qtest_qmp(dg->qts, "{ 'execute': 'query-qmp-schema' }");
    types = g_hash_table_new(g_str_hash, g_str_equal);
    QLIST_FOREACH_ENTRY(qdict_get_qlist(schema, "return"), e) {
        QDict *t = qobject_to(QDict, qlist_entry_obj(e));

        g_hash_table_insert(types, (gpointer)qdict_get_str(t, "name"), t);
    }

    for (i = 0; i < ARRAY_SIZE(commands); i++) {
        QDict *cmd = g_hash_table_lookup(types, commands[i].name);
        QDict *args;
        g_autofree char *extra = NULL;

        g_assert_nonnull(cmd);
        args = g_hash_table_lookup(types, qdict_get_str(cmd, "arg-type"));
        QLIST_FOREACH_ENTRY(qdict_get_qlist(args, "members"), e) {
            QDict *m = qobject_to(QDict, qlist_entry_obj(e));
            const char *member = qdict_get_str(m, "name");
            const char *const *v;

            for (v = wrong_values(json_type_of(types,
                                               qdict_get_str(m, "type")));
                 *v; v++) {
                QDict *call = qobject_to(QDict,
                    qobject_from_json(commands[i].base, &error_abort));
                g_autoptr(GString) json = NULL;

                qdict_put_obj(call, member,
                              qobject_from_json(*v, &error_abort));
                json = qobject_to_json(QOBJECT(call));
                assert_command_fails(dg->qts, before, commands[i].name,
                                     json->str, NULL);
                qobject_unref(call);
                checked++;
            }
        }
        extra = g_strdup_printf("%.*s%s'no-such-argument': 1 }",
                                (int)strlen(commands[i].base) - 1,
                                commands[i].base,
                                strlen(commands[i].base) > 2 ? ", " : "");
        assert_command_fails(dg->qts, before, commands[i].name, extra,
                             "no-such-argument");
        checked++;
    }
    g_test_message("%d bad calls refused", checked);
    qobject_unref(schema);
    qobject_unref(before);
}

/*
 * HMP: bad numbers and flags print an error and start nothing.  A
 * sample count of -1 is a number like any other, not "the default".
 */
static void test_hmp_bad_input(DirtyGuest *dg, const DirtyrateCase *c)
{
    static const char *const bad[] = {
        "calc_dirty_rate 0", "calc_dirty_rate -1", "calc_dirty_rate 61",
        "calc_dirty_rate -m 49", "calc_dirty_rate -m 60001",
        "calc_dirty_rate 18446744073709602",
        "calc_dirty_rate 99999999999999999999",
        "calc_dirty_rate x", "calc_dirty_rate 1 0", "calc_dirty_rate 1 -1",
        "calc_dirty_rate 1 16385", "calc_dirty_rate -r 1",
        "calc_dirty_rate -r -b 1", "calc_dirty_rate -b 1 512",
    };
    QDict *before;
    int i;

    dirtyrate_calc(dg->qts, NULL, 100, 0);
    qobject_unref(dirtyrate_wait(dg->qts));
    before = monitored_state(dg->qts);
    for (i = 0; i < ARRAY_SIZE(bad); i++) {
        g_autofree char *out = dirtyrate_hmp(dg->qts, bad[i]);
        QDict *after = monitored_state(dg->qts);

        g_test_message("%s: %s", bad[i], out);
        g_assert_null(strstr(out, "Starting dirty rate measurement"));
        g_assert_cmpstr(out, !=, "");
        assert_state_unchanged(before, after);
        qobject_unref(after);
    }
    qobject_unref(before);
}

/*
 * @rsp, the answer to a second calc-dirty-rate, refuses it because a
 * measurement is running; the running one, a 1000 ms page-sampling
 * measurement, then completes with its own parameters.
 */
static void assert_first_calc_wins(QTestState *qts, QDict *rsp)
{
    QDict *info;

    g_assert_true(qdict_haskey(rsp, "error"));
    g_assert_nonnull(strstr(qdict_get_str(qdict_get_qdict(rsp, "error"),
                                          "desc"),
                            "already being measured"));
    qobject_unref(rsp);

    info = dirtyrate_wait(qts);
    g_assert_cmpstr(qdict_get_str(info, "status"), ==, "measured");
    g_assert_cmpstr(qdict_get_str(info, "mode"), ==, "page-sampling");
    g_assert_cmpint(qdict_get_int(info, "calc-time"), >=, 1000);
    qobject_unref(info);
}

static void test_second_calc_refused(DirtyGuest *dg, const DirtyrateCase *c)
{
    QDict *rsp;

    dirtyrate_calc(dg->qts, NULL, 1000, 0);
    dirtyrate_wait_status(dg->qts, "measuring");
    rsp = qtest_qmp(dg->qts, "{ 'execute': 'calc-dirty-rate', "
                    "'arguments': { 'calc-time': 100, "
                    "'calc-time-unit': 'millisecond', "
                    "'mode': 'dirty-bitmap' } }");
    assert_first_calc_wins(dg->qts, rsp);
}

/*
 * Two calc-dirty-rate commands sent back to back, without waiting for the
 * first to answer: the second must be refused, and the measurement must
 * run with the first one's parameters.
 */
static void test_back_to_back_calc_refused(DirtyGuest *dg,
                                           const DirtyrateCase *c)
{
    QDict *first;

    qtest_qmp_send(dg->qts, "{ 'execute': 'calc-dirty-rate', 'arguments': "
                   "{ 'calc-time': 1000, 'calc-time-unit': 'millisecond' } }");
    qtest_qmp_send(dg->qts, "{ 'execute': 'calc-dirty-rate', 'arguments': "
                   "{ 'calc-time': 100, 'calc-time-unit': 'millisecond', "
                   "'mode': 'dirty-bitmap' } }");
    first = qtest_qmp_receive(dg->qts);
    g_assert_true(qdict_haskey(first, "return"));
    qobject_unref(first);
    assert_first_calc_wins(dg->qts, qtest_qmp_receive(dg->qts));
}

void dirtyrate_test_add_validation(void)
{
    const DirtyrateCase tcg = { &dirtyrate_tcg };

    dirtyrate_add_guest_case("validation/query-before-any-calc-is-unstarted",
                             &tcg, test_query_before_calc);
    dirtyrate_add_guest_case("validation/"
                             "bad-input-is-refused-and-keeps-the-result",
                             &tcg, test_bad_input_keeps_result);
    dirtyrate_add_guest_case("validation/"
                             "wrong-types-for-every-argument-are-refused",
                             &tcg, test_bad_input_table);
    dirtyrate_add_guest_case("validation/hmp-bad-input-starts-nothing",
                             &tcg, test_hmp_bad_input);
    dirtyrate_add_guest_case("validation/"
                             "second-calc-while-measuring-is-refused",
                             &tcg, test_second_calc_refused);
    dirtyrate_add_guest_case("validation/"
                             "back-to-back-calcs-start-only-the-first",
                             &tcg, test_back_to_back_calc_refused);
}
