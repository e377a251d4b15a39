//! Compiles shim/mlx_shim.cpp against libmlx (from `tools/ensure-mlx.sh`) and links it.
//!
//! libmlx is looked for in `$LOCAL_MLX_MLX_DIR`, else in the folder ensure-mlx.sh
//! installs to. Without it the crate still builds (so `cargo build --workspace` works
//! on a machine that never ran the script), with cfg `mlx` unset: every entry point
//! then returns `Error::NoMlx`, which says to run the script and rebuild.
use std::path::PathBuf;

const MLX_VERSION: &str = "0.32.4"; // = tools/ensure-mlx.sh

fn main() {
    println!("cargo::rustc-check-cfg=cfg(mlx)");
    println!("cargo:rerun-if-env-changed=LOCAL_MLX_MLX_DIR");
    println!("cargo:rerun-if-changed=shim/mlx_shim.cpp");
    let dir = match std::env::var_os("LOCAL_MLX_MLX_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
            home.join(format!(".cache/local-mlx/mlx-{MLX_VERSION}"))
        }
    };
    let (include, lib) = (dir.join("mlx/include"), dir.join("mlx/lib"));
    println!("cargo:rerun-if-changed={}", lib.display());
    if !include.join("mlx/mlx.h").is_file() {
        println!(
            "cargo:warning=libmlx not found in {}: the native engine is built without MLX \
             (run `source tools/ensure-mlx.sh` and rebuild)",
            dir.display()
        );
        return;
    }
    cc::Build::new()
        .cpp(true)
        .std("c++20")
        .file("shim/mlx_shim.cpp")
        .include(&include)
        .opt_level(2)
        .warnings(false)
        .compile("mlx_shim");
    println!("cargo:rustc-link-search=native={}", lib.display());
    println!("cargo:rustc-link-lib=dylib=mlx");
    // The worker finds libmlx where it was built against (Stage 1: the cache folder).
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-cfg=mlx");
}
