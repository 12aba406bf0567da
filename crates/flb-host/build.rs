//! Compiles the C half of the host: the C-variadic `log_print` and the
//! flush trampoline / coroutine switch (`csrc/flb_host.c`).

fn main() {
    println!("cargo:rerun-if-changed=csrc/flb_host.c");
    cc::Build::new()
        .file("csrc/flb_host.c")
        .warnings(true)
        .extra_warnings(true)
        .flag_if_supported("-fno-omit-frame-pointer")
        .compile("flb_host_c");
}
