/*
 * "echo": a tiny Fluent Bit external output plugin used to test flb-host.
 *
 * Properties:
 *   label        prefix of every log line (default "echo"); logged through
 *                log_print with a constant "%s" format
 *   result       ok | retry | error | <integer>: what flushes return
 *   init_return  if set, FLBPluginInit returns atoi(init_return) right away
 *   stack_kib    each flush touches this many KiB of stack
 *   sleep_ms     each flush sleeps this long (concurrency tests)
 *
 * Test-only exports: echo_register_count(), echo_unregister_count(),
 * echo_max_inflight(), echo_exit_count(), echo_pre_register_arg(),
 * echo_pre_run_arg(), echo_pre_exit_arg(), echo_def_type_seen().
 */

#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FLB_ERROR 0
#define FLB_OK 1
#define FLB_RETRY 2
#define FLB_PROXY_OUTPUT_PLUGIN 2
#define FLB_PROXY_GOLANG 11
#define FLB_LOG_ERROR 1
#define FLB_LOG_INFO 3
#define FLB_LOG_DEBUG 4

struct flb_plugin_proxy_def {
    int type;
    int proxy;
    int flags;
    char *name;
    char *description;
    int event_type;
    void *config_map;
};

struct flb_api {
    const char *(*output_get_property)(const char *, void *);
    const char *(*input_get_property)(const char *, void *);
    void *(*output_get_cmt_instance)(void *);
    void *(*input_get_cmt_instance)(void *);
    void (*log_print)(int, const char *, int, const char *, ...);
    int (*input_log_check)(void *, int);
    int (*output_log_check)(void *, int);
    const char *(*custom_get_property)(const char *, void *);
    int (*custom_log_check)(void *, int);
};

struct flb_plugin_proxy_context {
    void *remote_context;
    void *proxy;
};

struct flbgo_output_plugin {
    char *name;
    struct flb_api *api;
    void *o_ins;
    struct flb_plugin_proxy_context *context;
};

struct echo_ctx {
    struct flb_api *api;
    void *o_ins;
    char label[256];
    int result;
    int stack_kib;
    int sleep_ms;
    atomic_int flushes;
};

static atomic_int register_count;
static atomic_int unregister_count;
static atomic_int inflight;
static atomic_int max_inflight;
static atomic_int exit_count;
static atomic_int pre_register_arg = -100;
static atomic_int pre_run_arg = -100;
static atomic_int pre_exit_arg = -100;
static atomic_int def_type_seen = -100;

int echo_register_count(void) { return register_count; }
int echo_unregister_count(void) { return unregister_count; }
int echo_max_inflight(void) { return max_inflight; }
int echo_exit_count(void) { return exit_count; }
int echo_pre_register_arg(void) { return pre_register_arg; }
int echo_pre_run_arg(void) { return pre_run_arg; }
int echo_pre_exit_arg(void) { return pre_exit_arg; }
int echo_def_type_seen(void) { return def_type_seen; }

static void echo_log(struct flb_api *api, void *o_ins, int level, const char *msg)
{
    if (api->output_log_check(o_ins, level)) {
        api->log_print(level, __FILE__, __LINE__, "%s", msg);
    }
}

int FLBPluginPreRegister(int hot_reloading)
{
    pre_register_arg = hot_reloading;
    return 0;
}

int FLBPluginRegister(struct flb_plugin_proxy_def *def)
{
    def_type_seen = def->type;
    def->type = FLB_PROXY_OUTPUT_PLUGIN;
    def->proxy = FLB_PROXY_GOLANG;
    def->flags = 0;
    def->name = strdup("echo");
    def->description = strdup("echo test plugin");
    def->event_type = 0;
    register_count++;
    return 0;
}

void FLBPluginUnregister(struct flb_plugin_proxy_def *def)
{
    /* the plugin owns these strings (as in the Go SDK) */
    free(def->name);
    free(def->description);
    def->name = NULL;
    def->description = NULL;
    unregister_count++;
}

int FLBPluginInit(struct flbgo_output_plugin *p)
{
    char msg[512];
    const char *v;
    struct echo_ctx *ctx;
    struct flb_api *api = p->api;
    void *o_ins = p->o_ins;

    v = api->output_get_property("init_return", o_ins);
    if (v != NULL) {
        return atoi(v);
    }

    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL) {
        return FLB_ERROR;
    }
    ctx->api = api;
    ctx->o_ins = o_ins;

    v = api->output_get_property("label", o_ins);
    snprintf(ctx->label, sizeof(ctx->label), "%s", v ? v : "echo");

    ctx->result = FLB_OK;
    v = api->output_get_property("result", o_ins);
    if (v != NULL) {
        if (strcmp(v, "retry") == 0) {
            ctx->result = FLB_RETRY;
        }
        else if (strcmp(v, "error") == 0) {
            ctx->result = FLB_ERROR;
        }
        else if (strcmp(v, "ok") != 0) {
            ctx->result = atoi(v);
        }
    }
    v = api->output_get_property("stack_kib", o_ins);
    ctx->stack_kib = v ? atoi(v) : 0;
    v = api->output_get_property("sleep_ms", o_ins);
    ctx->sleep_ms = v ? atoi(v) : 0;

    p->context->remote_context = ctx;

    snprintf(msg, sizeof(msg), "[%s] init result=%d cmt=%s", ctx->label,
             ctx->result,
             api->output_get_cmt_instance(o_ins) ? "set" : "null");
    echo_log(api, o_ins, FLB_LOG_INFO, msg);
    snprintf(msg, sizeof(msg), "[%s] debug enabled", ctx->label);
    echo_log(api, o_ins, FLB_LOG_DEBUG, msg);
    return FLB_OK;
}

int FLBPluginOutputPreRun(int hot_reload)
{
    pre_run_arg = hot_reload;
    return 0;
}

void FLBPluginOutputPreExit(int by_hot_reload)
{
    pre_exit_arg = by_hot_reload;
}

__attribute__((noinline))
static int touch_stack(int kib)
{
    volatile char buf[kib * 1024];
    int i;

    for (i = 0; i < kib * 1024; i += 64) {
        buf[i] = (char) i;
    }
    buf[0] = 1;
    return buf[kib * 1024 - 64];
}

int FLBPluginFlushCtx(void *remote_context, const void *data, size_t size,
                      char *tag)
{
    int now;
    int max;
    char tname[32] = {0};
    char msg[512];
    struct timespec ts;
    struct echo_ctx *ctx = remote_context;

    if (ctx == NULL) {
        return FLB_ERROR;
    }

    now = ++inflight;
    max = max_inflight;
    while (now > max && !atomic_compare_exchange_weak(&max_inflight, &max, now)) {
    }

    pthread_getname_np(pthread_self(), tname, sizeof(tname));
    snprintf(msg, sizeof(msg), "[%s] flush tag=%s size=%zu data=%s thread=%s",
             ctx->label, tag ? tag : "(null)", size, data ? "set" : "null",
             tname);
    echo_log(ctx->api, ctx->o_ins, FLB_LOG_INFO, msg);

    if (ctx->stack_kib > 0) {
        touch_stack(ctx->stack_kib);
    }
    if (ctx->sleep_ms > 0) {
        ts.tv_sec = ctx->sleep_ms / 1000;
        ts.tv_nsec = (long) (ctx->sleep_ms % 1000) * 1000000L;
        nanosleep(&ts, NULL);
    }
    ctx->flushes++;
    inflight--;

    if (data == NULL || size == 0 || tag == NULL) {
        return FLB_ERROR;
    }
    return ctx->result;
}

int FLBPluginExitCtx(void *remote_context)
{
    char msg[512];
    struct echo_ctx *ctx = remote_context;

    exit_count++;
    if (ctx == NULL) {
        return FLB_ERROR;
    }
    snprintf(msg, sizeof(msg), "[%s] exit flushes=%d", ctx->label,
             (int) ctx->flushes);
    echo_log(ctx->api, ctx->o_ins, FLB_LOG_INFO, msg);
    free(ctx);
    return FLB_OK;
}
