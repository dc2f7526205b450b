//! Writes the fuzz targets' seed corpora (`writ_tests::fuzz_seeds`) under a directory, one
//! subdirectory per target: `cargo run -p writ-tests --bin fuzz-seeds -- fuzz/libfuzzer/corpus`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fuzz/libfuzzer/corpus".into()));
    for seed in writ_tests::fuzz_seeds::seeds() {
        let target = dir.join(seed.target);
        if let Err(e) =
            std::fs::create_dir_all(&target).and_then(|()| std::fs::write(target.join(&seed.name), &seed.bytes))
        {
            eprintln!("error: cannot write the `{}` seed `{}` under {}: {e}", seed.target, seed.name, dir.display());
            return ExitCode::FAILURE;
        }
    }
    println!("seed corpora written under {}", dir.display());
    ExitCode::SUCCESS
}
