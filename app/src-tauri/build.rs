fn main() {
    // Tauri copies the bundled uv from here; say how to get it instead of a bare
    // "path doesn't exist".
    let triple = std::env::var("TARGET").unwrap_or_default();
    let uv = std::path::Path::new("binaries")
        .join(format!("uv-{triple}{}", if triple.contains("windows") { ".exe" } else { "" }));
    if !uv.is_file() {
        panic!("{} is missing: run tools/app-fetch-uv.sh (it takes uv from its PyPI wheel)", uv.display());
    }
    tauri_build::build()
}
