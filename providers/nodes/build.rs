//! Embeds the runtimes shipped with tik (`modules/runtimes/<name>/...`) in tik-nodes,
//! so the binary carries them: `EMBEDDED_RUNTIMES` lists (runtime, file, text).

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    // Where the crate is now: read when the script runs, not baked in when it was
    // compiled (a build script built in another checkout sharing the target
    // directory would look there, and embed nothing).
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest).join("../../modules/runtimes");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut out = String::from("pub static EMBEDDED_RUNTIMES: &[(&str, &str, &str)] = &[\n");
    let mut runtimes: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| {
            panic!(
                "cannot read the shipped runtimes in {}: {e}",
                root.display()
            )
        })
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    assert!(
        runtimes.iter().any(|p| p.join("runtime.tik.hcl").is_file()),
        "{} holds no runtime: tik would ship without its runtimes",
        root.display()
    );
    runtimes.sort();
    for dir in runtimes.iter().filter(|p| p.is_dir()) {
        println!("cargo:rerun-if-changed={}", dir.display());
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .expect("a runtime directory")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for f in files {
            println!("cargo:rerun-if-changed={}", f.display());
            let file = f.file_name().unwrap().to_string_lossy().to_string();
            let path = f.canonicalize().expect("a runtime file");
            writeln!(
                out,
                "    ({name:?}, {file:?}, include_str!({:?})),",
                path.display().to_string()
            )
            .unwrap();
        }
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("runtimes.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}
