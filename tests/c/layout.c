/*
 * Prints the layout of every struct of include/firehose_fanout.h as the C compiler sees
 * it, for tests/abi_layout.rs to compare with the plugin's and the test host's Rust
 * definitions. One line per struct and per field:
 *     struct <name> <size> <align>
 *     field <struct> <field> <offset> <size>
 */
#include <stdio.h>
#include <stddef.h>
#include <stdalign.h>
#include "firehose_fanout.h"

#define STRUCT(s) \
    printf("struct %s %zu %zu\n", #s, sizeof(struct s), alignof(struct s))
#define FIELD(s, f) \
    printf("field %s %s %zu %zu\n", #s, #f, offsetof(struct s, f), sizeof(((struct s *)0)->f))

int main(void)
{
    STRUCT(flb_plugin_proxy_def);
    FIELD(flb_plugin_proxy_def, type);
    FIELD(flb_plugin_proxy_def, proxy);
    FIELD(flb_plugin_proxy_def, flags);
    FIELD(flb_plugin_proxy_def, name);
    FIELD(flb_plugin_proxy_def, description);
    FIELD(flb_plugin_proxy_def, event_type);
    FIELD(flb_plugin_proxy_def, config_map);

    STRUCT(flb_api);
    FIELD(flb_api, output_get_property);
    FIELD(flb_api, input_get_property);
    FIELD(flb_api, output_get_cmt_instance);
    FIELD(flb_api, input_get_cmt_instance);
    FIELD(flb_api, log_print);
    FIELD(flb_api, input_log_check);
    FIELD(flb_api, output_log_check);
    FIELD(flb_api, custom_get_property);
    FIELD(flb_api, custom_log_check);

    STRUCT(flb_plugin_proxy_context);
    FIELD(flb_plugin_proxy_context, remote_context);
    FIELD(flb_plugin_proxy_context, proxy);

    STRUCT(flbgo_output_plugin);
    FIELD(flbgo_output_plugin, name);
    FIELD(flbgo_output_plugin, api);
    FIELD(flbgo_output_plugin, o_ins);
    FIELD(flbgo_output_plugin, context);
    return 0;
}
