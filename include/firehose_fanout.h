/*
 * firehose_fanout.h - the C symbols exported by libfirehose_fanout.so, a Fluent Bit
 * output plugin that ships log records to Amazon Kinesis Data Firehose over many delivery
 * streams.
 *
 * Fluent Bit loads the library as an external ("Go proxy") output plugin:
 *     fluent-bit -e /path/to/libfirehose_fanout.so -c fluent-bit.conf
 * and calls these functions in this order: FLBPluginRegister once per load,
 * FLBPluginInit once per [OUTPUT] section, FLBPluginFlushCtx per chunk (possibly from
 * several worker threads at once), FLBPluginExitCtx once per instance at shutdown,
 * FLBPluginUnregister before dlclose.
 *
 * No function lets a Rust panic unwind into C; every pointer argument is checked for NULL.
 * Struct layouts are those of Fluent Bit's flb_plugin_proxy.h / proxy/go/go.h (LP64).
 */
#ifndef FIREHOSE_FANOUT_H
#define FIREHOSE_FANOUT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Flush return codes, as Fluent Bit defines them. */
#define FLB_ERROR 0 /* the chunk can never be delivered: Fluent Bit drops it */
#define FLB_OK    1 /* every record of the chunk was accepted by Firehose */
#define FLB_RETRY 2 /* some records are still pending: Fluent Bit re-sends the same chunk */

#define FLB_PROXY_OUTPUT_PLUGIN 2
#define FLB_PROXY_GOLANG        11

/* Filled by FLBPluginRegister. Fluent Bit zeroes it beforehand, copies name, keeps
 * pointing at description while the plugin is registered, and frees neither:
 * FLBPluginUnregister does. */
struct flb_plugin_proxy_def {
    int   type;        /* set to FLB_PROXY_OUTPUT_PLUGIN */
    int   proxy;       /* set to FLB_PROXY_GOLANG */
    int   flags;       /* set to 0 */
    char *name;        /* "firehose_fanout", malloc'd */
    char *description; /* with the version and git revision, malloc'd */
    int   event_type;  /* 0: logs */
    void *config_map;  /* left NULL */
};

/* Fluent Bit's API table, handed to FLBPluginInit. */
struct flb_api {
    const char *(*output_get_property)(const char *key, void *o_ins);
    const char *(*input_get_property)(const char *key, void *i_ins);
    void *(*output_get_cmt_instance)(void *o_ins);
    void *(*input_get_cmt_instance)(void *i_ins);
    void  (*log_print)(int level, const char *file, int line, const char *fmt, ...);
    int   (*input_log_check)(void *i_ins, int level);
    int   (*output_log_check)(void *o_ins, int level);
    const char *(*custom_get_property)(const char *key, void *c_ins);
    int   (*custom_log_check)(void *c_ins, int level);
};

struct flb_plugin_proxy_context {
    void *remote_context; /* FLBPluginInit stores the instance here */
    void *proxy;
};

struct flbgo_output_plugin {
    char *name;
    struct flb_api *api;
    void *o_ins;
    struct flb_plugin_proxy_context *context;
    /* Fluent Bit-private fields follow; the plugin never touches them. */
};

/*
 * Called by Fluent Bit once after dlopen. Fills def (type, proxy kind 11, name
 * "firehose_fanout", description). Returns 0, or -1 when def is NULL or memory runs out
 * (Fluent Bit then refuses the plugin).
 */
int FLBPluginRegister(struct flb_plugin_proxy_def *def);

/*
 * Called on Fluent Bit's engine thread once per [OUTPUT] section. Reads the instance's
 * properties through api->output_get_property, validates them, starts the instance and
 * stores it in context->remote_context. Returns FLB_OK (1), or FLB_ERROR (0) after a log
 * line naming the bad key and what it accepts (Fluent Bit then refuses to start).
 */
int FLBPluginInit(struct flbgo_output_plugin *plugin);

/*
 * Called per chunk by a Fluent Bit worker thread (or the engine thread with workers 0),
 * on a 64 KiB coroutine stack. remote_context is what FLBPluginInit stored; data/size is
 * the chunk (concatenated msgpack events), valid only during the call; tag is a
 * NUL-terminated string. The plugin's own threads decode and deliver the chunk: with
 * delivery_mode sync they read it in place and stop reading before the call returns;
 * with delivery_mode async it is copied into the plugin's buffer. The call blocks until every record is accepted (FLB_OK), flush_timeout passes with
 * records still pending (FLB_RETRY), or nothing in the chunk can be delivered
 * (FLB_ERROR). Safe to call concurrently for one instance. NULL data or size 0 gives
 * FLB_ERROR; a NULL remote_context gives FLB_ERROR; a NULL tag counts as "".
 */
int FLBPluginFlushCtx(void *remote_context, const void *data, size_t size, char *tag);

/*
 * Called once after every [OUTPUT] instance started, with 1 when hot reload is on. Warns
 * (through each new instance's log) when hot reload is on and the instance has worker
 * threads, the setup Fluent Bit up to at least v5.1 crashes with at the second reload.
 * Always returns FLB_OK.
 */
int FLBPluginOutputPreRun(int hot_reload_enabled);

/*
 * Called on the engine thread once per instance at shutdown (or hot reload). Stops taking
 * work, waits a bounded time for flushes in flight, releases the instance; the last
 * instance of the process also stops the plugin's threads. Returns FLB_OK, or FLB_ERROR
 * for a NULL remote_context.
 */
int FLBPluginExitCtx(void *remote_context);

/*
 * Called before dlclose. Frees the name and description that FLBPluginRegister put into
 * def (and sets them to NULL, so a second call does nothing). def may be NULL.
 */
void FLBPluginUnregister(struct flb_plugin_proxy_def *def);

#ifdef __cplusplus
}
#endif

#endif /* FIREHOSE_FANOUT_H */
