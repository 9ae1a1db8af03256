//! Helpers shared by the integration tests: example projects on generated data.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use assert_cmd::Command;
use sluice_engine::fixtures::{
    GenOptions, generate_example_test_data, generate_sales_calls, write_example_project,
};
use sluice_engine::{EnvSession, Project, SampleOverride};
use tempfile::TempDir;

/// A project made from the sales_calls example, with data in both stores.
pub struct TestProject {
    pub dir: TempDir,
}

impl TestProject {
    /// The example project with `scale` of demo data (0.05 = 5,000 calls).
    pub fn example(scale: f64) -> TestProject {
        Self::example_with(GenOptions {
            scale,
            ..GenOptions::default()
        })
    }

    pub fn example_with(options: GenOptions) -> TestProject {
        let p = Self::example_undeployed(options);
        p.deploy_and_promote_all();
        p
    }

    /// The example project with data, but nothing deployed anywhere yet.
    pub fn example_undeployed(options: GenOptions) -> TestProject {
        let dir = tempfile::tempdir().expect("tempdir");
        write_example_project(dir.path()).expect("example project");
        for env in ["staging", "production"] {
            generate_sales_calls(&dir.path().join("data").join(env), &options).expect("generate");
        }
        // The pipe tests' fixture store, as `sluice init` writes it.
        generate_example_test_data(dir.path()).expect("generate tests/data");
        TestProject { dir }
    }

    /// Deploys every pipe of the working copy to staging and promotes them all to
    /// production, as `sluice init` does.
    pub fn deploy_and_promote_all(&self) {
        use sluice_engine::deploy::{PromoteOptions, deploy, promote};
        let project = self.project();
        block_on(deploy(&project, "staging", &[], "tests")).expect("deploy to staging");
        let report = block_on(promote(
            project,
            "staging",
            "production",
            &[],
            &PromoteOptions {
                actor: "tests".into(),
                ..PromoteOptions::default()
            },
        ))
        .expect("promote");
        assert!(!report.blocked(), "promotion blocked: {report:?}");
    }

    /// An empty project folder with this `sluice.toml` and these pipes.
    pub fn with_files(sluice_toml: &str, pipes: &[(&str, &str)]) -> TestProject {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("sluice.toml"), sluice_toml).unwrap();
        if !pipes.is_empty() {
            std::fs::create_dir_all(dir.path().join("pipes")).unwrap();
        }
        for (name, text) in pipes {
            std::fs::write(dir.path().join("pipes").join(format!("{name}.toml")), text).unwrap();
        }
        TestProject { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn store(&self, env: &str) -> PathBuf {
        self.dir.path().join("data").join(env)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// `sluice` run inside the project folder.
    pub fn sluice(&self) -> Command {
        let mut cmd = sluice();
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// Runs `sluice ARGS` in the project and requires exit `code`; returns (stdout,
    /// stderr), and shows both when the code differs.
    pub fn expect_exit(&self, args: &[&str], code: i32) -> (String, String) {
        let out = self.sluice().args(args).output().expect("run sluice");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        assert_eq!(
            out.status.code(),
            Some(code),
            "sluice {args:?}: expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        (text(&out.stdout), text(&out.stderr))
    }

    pub fn project(&self) -> Arc<Project> {
        Arc::new(Project::load(self.dir.path()).expect("project loads"))
    }

    pub fn session(&self, env: &str, sample: SampleOverride) -> EnvSession {
        EnvSession::open(self.project(), env, &sample).expect("session")
    }
}

/// The features of a Ballista test run: `cargo test --workspace --features …`.
pub const BALLISTA_FEATURES: &str = "sluice-suite/ballista,sluice-cli/ballista";

/// The `sluice` binary of this workspace. It lives in another package (`cli/`), which
/// cargo does not build for this package's tests, so the first test to need it builds it
/// (cargo releases its lock before running tests, and the build is a no-op when fresh).
pub fn sluice_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable");
        // target/<profile>/deps/main-… → target/<profile>/sluice
        let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = std::process::Command::new(cargo);
        // The same targets and features as `cargo test --workspace`: a build with another
        // feature set would replace the shared dependencies' artifacts (same file names)
        // and make every later test run rebuild DataFusion.
        build.args(["build", "--quiet", "--workspace", "--bins"]);
        if cfg!(feature = "ballista") {
            // The feature set and the one test target `.ci/run` runs with Ballista (README,
            // "Scale-out"): the other test binaries would cost CI minutes and gigabytes
            // of disk in that target folder for nothing.
            build.args(["--test", "main", "--features", BALLISTA_FEATURES]);
        } else {
            build.arg("--tests");
        }
        // `cargo test` gives this process the variables of the crate under test; build
        // scripts that track one of them (ring tracks CARGO_MANIFEST_DIR) would see it
        // change and rebuild everything above them. The child cargo gets the user's own.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            let per_crate = [
                "CARGO_MANIFEST_",
                "CARGO_PKG_",
                "CARGO_BIN_",
                "CARGO_CRATE_",
            ]
            .iter()
            .any(|p| key.starts_with(p))
                || [
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "RUST_RECURSION_COUNT",
                ]
                .contains(&key.as_ref());
            if per_crate {
                build.env_remove(key.as_ref());
            }
        }
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building the sluice binary failed");
        let bin = profile_dir.join(format!("sluice{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.is_file(), "{} was not built", bin.display());
        bin
    })
}

/// A `sluice` command with a clean environment of Sluice variables.
pub fn sluice() -> Command {
    let mut cmd = Command::new(sluice_bin());
    cmd.env_remove("SLUICE_PROJECT")
        .env_remove("SLUICE_LOG")
        .env_remove("SLUICE_SKIP_RULES")
        .env_remove("SLUICE_SMALL_INPUT_ROWS")
        .env_remove("SLUICE_ACTOR")
        .env_remove("RUST_LOG");
    cmd
}

/// A tokio runtime for library tests.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Every file under `dir` with its bytes, sorted: compare two of these to show a failed
/// command left a store exactly as it was.
pub fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn visit(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                visit(root, &path, out);
            } else {
                out.push((
                    path.strip_prefix(root).unwrap().display().to_string(),
                    std::fs::read(&path).unwrap_or_default(),
                ));
            }
        }
    }
    let mut out = Vec::new();
    visit(dir, dir, &mut out);
    out.sort();
    out
}

/// Writes `batch` as one Parquet file at `path` (its folders made), with `props`.
pub fn write_parquet(
    path: &Path,
    batch: &datafusion::arrow::record_batch::RecordBatch,
    props: Option<datafusion::parquet::file::properties::WriterProperties>,
) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut w =
        datafusion::parquet::arrow::ArrowWriter::try_new(file, batch.schema(), props).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

/// 0.1 → "10%".
pub fn percent(f: f64) -> String {
    sluice_engine::util::text::percent(f)
}
