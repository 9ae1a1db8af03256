//! A local Apache DataFusion Ballista cluster in one process — a scheduler and N
//! executors, as Ballista's standalone mode starts them — for trying an environment's
//! `engine = { kind = "ballista", … }` and for the benchmark in BENCHMARKS.md:
//!
//! ```sh
//! cargo run --release --features ballista --example ballista_cluster -- --executors 2 --slots 2
//! ```
//!
//! It prints the scheduler's URL (`df://localhost:PORT`) and runs until killed. It reads
//! local folders only; a production cluster runs `ballista-scheduler` and
//! `ballista-executor`.

use sluice_engine::session::ballista::LocalCluster;

fn main() {
    let mut executors = 2usize;
    let mut slots = 2usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> usize {
            args.next()
                .and_then(|v| v.parse().ok())
                .filter(|n| *n > 0)
                .unwrap_or_else(|| {
                    eprintln!("{name} needs a positive number");
                    std::process::exit(2)
                })
        };
        match arg.as_str() {
            "--executors" => executors = value("--executors"),
            "--slots" => slots = value("--slots"),
            other => {
                eprintln!("unknown argument {other} (expected --executors N, --slots N)");
                std::process::exit(2);
            }
        }
    }
    let cluster = LocalCluster::start(executors, slots).unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(1)
    });
    println!("{}", cluster.url());
    eprintln!(
        "Ballista scheduler at {} with {executors} executors of {slots} task slots; stop with Ctrl-C",
        cluster.url()
    );
    loop {
        std::thread::park();
    }
}
