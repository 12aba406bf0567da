/* Calls the plugin through its committed header, as a C host would. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include "firehose_fanout.h"

#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "check failed: %s\n", #cond); return 1; } } while (0)

int main(void)
{
    struct flb_plugin_proxy_def def;
    memset(&def, 0, sizeof(def));

    /* layouts the ABI facts give for LP64 */
    CHECK(sizeof(struct flb_plugin_proxy_def) == 48);
    CHECK(offsetof(struct flb_plugin_proxy_def, name) == 16);
    CHECK(offsetof(struct flbgo_output_plugin, context) == 24);
    CHECK(sizeof(struct flb_api) == 9 * sizeof(void *));

    CHECK(FLBPluginRegister(&def) == 0);
    CHECK(def.type == FLB_PROXY_OUTPUT_PLUGIN);
    CHECK(def.proxy == FLB_PROXY_GOLANG);
    CHECK(def.event_type == 0);
    CHECK(def.name != NULL && def.description != NULL);
    printf("name=%s\n", def.name);
    printf("description=%s\n", def.description);

    /* hostile calls are refused, not crashed on */
    CHECK(FLBPluginRegister(NULL) == -1);
    CHECK(FLBPluginInit(NULL) == FLB_ERROR);
    CHECK(FLBPluginFlushCtx(NULL, "x", 1, "tag") == FLB_ERROR);
    CHECK(FLBPluginFlushCtx(NULL, NULL, 0, NULL) == FLB_ERROR);
    CHECK(FLBPluginExitCtx(NULL) == FLB_ERROR);
    /* no instance started: nothing to warn about, either way */
    CHECK(FLBPluginOutputPreRun(1) == FLB_OK);
    CHECK(FLBPluginOutputPreRun(0) == FLB_OK);

    /* Unregister frees the strings (Fluent Bit does not) and may be called twice. */
    FLBPluginUnregister(&def);
    CHECK(def.name == NULL && def.description == NULL);
    FLBPluginUnregister(&def);
    FLBPluginUnregister(NULL);
    return 0;
}
