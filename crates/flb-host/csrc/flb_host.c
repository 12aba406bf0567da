/*
 * C half of flb-host.
 *
 * 1. flb_host_log_print(): the `log_print` entry of `struct flb_api`. It is
 *    C-variadic (`void (*)(int, const char *, int, const char *, ...)`), so it
 *    is written in C. Like Fluent Bit's flb_log_print() it formats the message
 *    with vsnprintf into a 4088-byte buffer on the caller's stack and renders
 *    it into a second 4 KiB buffer, so a plugin that logs from its flush
 *    callback consumes about the same amount of (coroutine) stack as it would
 *    inside Fluent Bit. The rendered message goes to a Rust sink.
 *
 * 2. flb_host_proxy_flush(): mirrors proxy_go_output_flush() in
 *    src/proxy/go/go.c: copy the tag into a malloc'd NUL-terminated buffer,
 *    call FLBPluginFlushCtx(ctx->remote_context, data, size, buf) (or
 *    FLBPluginFlush(data, size, buf)), free the buffer.
 *
 * 3. flb_host_flush_on_stack(): runs flb_host_proxy_flush() on a caller
 *    supplied stack with getcontext/makecontext/swapcontext, the way Fluent
 *    Bit runs every output flush inside a libco coroutine.
 */

#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

/* sizeof(((struct log_message *) 0)->msg) in src/flb_log.c */
#define FLB_HOST_LOG_BODY_SIZE 4088
/*
 * Fluent Bit writes a header such as "[2026/01/01 00:00:00.000] [ info] "
 * (34 bytes when stderr is not a terminal) and formats the message into the
 * rest of the buffer minus 2 bytes: messages longer than ~4051 bytes are
 * truncated. We reproduce that limit.
 */
#define FLB_HOST_LOG_HEADER_SIZE 34
#define FLB_HOST_LOG_MSG_MAX (FLB_HOST_LOG_BODY_SIZE - 2 - FLB_HOST_LOG_HEADER_SIZE)

typedef void (*flb_host_log_sink_fn)(int level, const char *file, int line,
                                     const char *msg, size_t len);

static flb_host_log_sink_fn flb_host_log_sink;

void flb_host_set_log_sink(flb_host_log_sink_fn sink)
{
    __atomic_store_n(&flb_host_log_sink, sink, __ATOMIC_RELEASE);
}

void flb_host_log_print(int level, const char *file, int line,
                        const char *fmt, ...)
{
    int n;
    size_t len;
    va_list args;
    char body[FLB_HOST_LOG_BODY_SIZE];
    char msg[4096];
    flb_host_log_sink_fn sink;

    if (fmt == NULL) {
        /* Fluent Bit would crash in vsnprintf; record the misuse instead. */
        snprintf(body, sizeof(body),
                 "flb-host: log_print called with a NULL format");
    }
    else {
        va_start(args, fmt);
        n = vsnprintf(body, FLB_HOST_LOG_MSG_MAX, fmt, args);
        va_end(args);
        if (n < 0) {
            return;
        }
    }

    len = strlen(body);
    memcpy(msg, body, len);
    msg[len] = '\0';

    sink = __atomic_load_n(&flb_host_log_sink, __ATOMIC_ACQUIRE);
    if (sink != NULL) {
        sink(level, file, line, msg, len);
    }
}

/* One flush call, filled by the Rust side. */
struct flb_host_flush_call {
    int (*cb_flush_ctx)(void *, const void *, size_t, char *);
    int (*cb_flush)(const void *, size_t, const char *);
    /* struct flb_plugin_proxy_context *: remote_context is its first field
     * and is read at flush time, as Fluent Bit does */
    void **proxy_context;
    const void *data;
    size_t size;
    const char *tag;
    size_t tag_len;
    /* 1: copy the tag into a malloc'd buffer (Fluent Bit); 0: pass as is */
    int copy_tag;
    int ret;
};

int flb_host_proxy_flush(struct flb_host_flush_call *c)
{
    int ret;
    char *buf;

    if (c->copy_tag) {
        buf = malloc(c->tag_len + 1);
        if (buf == NULL) {
            c->ret = -1;
            return -1;
        }
        if (c->tag_len > 0) {
            memcpy(buf, c->tag, c->tag_len);
        }
        buf[c->tag_len] = '\0';
    }
    else {
        buf = (char *) c->tag;
    }

    if (c->cb_flush_ctx != NULL) {
        ret = c->cb_flush_ctx(*c->proxy_context, c->data, c->size, buf);
    }
    else {
        ret = c->cb_flush(c->data, c->size, buf);
    }

    if (c->copy_tag) {
        free(buf);
    }
    c->ret = ret;
    return ret;
}

static __thread struct flb_host_flush_call *flb_host_current_call;

static void flb_host_coro_main(void)
{
    flb_host_proxy_flush(flb_host_current_call);
    /* returning resumes uc_link, i.e. the caller of swapcontext() */
}

/*
 * Run one flush on the stack [stack_lo, stack_lo + stack_size).
 * Returns 0 when the flush ran (result in c->ret), -1 when the context
 * switch could not be set up.
 */
int flb_host_flush_on_stack(void *stack_lo, size_t stack_size,
                            struct flb_host_flush_call *c)
{
    ucontext_t caller;
    ucontext_t callee;

    if (getcontext(&callee) == -1) {
        return -1;
    }
    callee.uc_stack.ss_sp = stack_lo;
    callee.uc_stack.ss_size = stack_size;
    callee.uc_stack.ss_flags = 0;
    callee.uc_link = &caller;
    makecontext(&callee, flb_host_coro_main, 0);

    flb_host_current_call = c;
    if (swapcontext(&caller, &callee) == -1) {
        flb_host_current_call = NULL;
        return -1;
    }
    flb_host_current_call = NULL;
    return 0;
}
