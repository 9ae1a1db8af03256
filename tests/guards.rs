//! Nothing lost, nothing crashed: each failure of the reliability review, through the
//! binary, with the stores compared before and after (issue 25).

use crate::common::{TestProject, tree};

fn example() -> TestProject {
    TestProject::example(0.02)
}

/// Both stores of the example, as they are now.
fn stores(p: &TestProject) -> Vec<Vec<(String, Vec<u8>)>> {
    ["staging", "production"]
        .iter()
        .map(|e| tree(&p.store(e)))
        .collect()
}

#[test]
fn a_branch_over_another_environments_store_is_refused() {
    let p = example();
    let before = stores(&p);
    let (_, err) = p.expect_exit(
        &[
            "branch",
            "create",
            "trybr",
            "--from",
            "staging",
            "--data",
            "data/production",
        ],
        2,
    );
    assert!(
        err.contains("overlaps the store of environment `production`"),
        "{err}"
    );
    // Inside another store, or holding one, is the same.
    for data in ["data/production/sub", "data", "./data/../data/staging"] {
        let (_, err) = p.expect_exit(
            &[
                "branch", "create", "b2", "--from", "staging", "--data", data,
            ],
            2,
        );
        assert!(err.contains("overlaps the store"), "{data}: {err}");
    }
    assert!(!p.path().join(".sluice/branches/trybr.toml").exists());
    assert_eq!(stores(&p), before);
}

#[test]
fn a_branch_file_pointing_at_another_store_is_refused_and_never_deleted() {
    let p = example();
    // A branch file written by hand (or by an older Sluice) over production's store.
    p.write(
        ".sluice/branches/evil.toml",
        "parent = \"staging\"\ndata = \"data/production\"\nsample = \"full\"\ncreated_at = \"x\"\ncreated_by = \"x\"\n",
    );
    let before = stores(&p);
    let (_, err) = p.expect_exit(&["branch", "delete", "evil"], 2);
    assert!(err.contains("share a store"), "{err}");
    assert!(err.contains("evil.toml"), "{err}");
    assert_eq!(stores(&p), before);
    // Forgetting the branch file makes the project whole again.
    std::fs::remove_file(p.path().join(".sluice/branches/evil.toml")).unwrap();
    p.expect_exit(&["envs"], 0);
}

#[test]
fn a_branch_deletes_only_its_own_store() {
    let p = example();
    let before = stores(&p);
    p.expect_exit(&["branch", "create", "try", "--from", "production"], 0);
    p.expect_exit(&["deploy", "--all", "--env", "try"], 0);
    p.expect_exit(&["branch", "delete", "try"], 0);
    assert_eq!(stores(&p), before);
    // A branch store elsewhere that lost its marker is not deleted.
    let elsewhere = tempfile::tempdir().unwrap();
    let data = elsewhere.path().join("b");
    p.expect_exit(
        &[
            "branch",
            "create",
            "far",
            "--from",
            "production",
            "--data",
            data.to_str().unwrap(),
        ],
        0,
    );
    std::fs::write(data.join("precious.txt"), "keep me").unwrap();
    std::fs::remove_file(data.join("_sluice/branch.json")).unwrap();
    let (_, err) = p.expect_exit(&["branch", "delete", "far"], 2);
    assert!(err.contains("marker"), "{err}");
    assert!(data.join("precious.txt").exists());
}

#[test]
fn two_environments_may_not_share_a_store() {
    let p = example();
    let toml = std::fs::read_to_string(p.path().join("sluice.toml")).unwrap();
    let before = stores(&p);
    for shared in ["data/production", "data/production/", "./data/production/x"] {
        p.write(
            "sluice.toml",
            &toml.replacen("\"data/staging\"", &format!("\"{shared}\""), 1),
        );
        for args in [
            &["deploy", "top_reps"][..],
            &["sample", "build"][..],
            &["envs"][..],
        ] {
            let (_, err) = p.expect_exit(args, 2);
            assert!(
                err.contains("sluice.toml:")
                    && err.contains("share a store")
                    && err.contains("`production`")
                    && err.contains("`staging`"),
                "{shared} {args:?}: {err}"
            );
        }
    }
    p.write("sluice.toml", &toml);
    assert_eq!(stores(&p), before);
}

#[test]
fn a_pipe_may_not_replace_a_declared_source() {
    let p = example();
    let before = stores(&p);
    p.write(
        "pipes/clobber.toml",
        "materialize = { to = \"calls\" }\n[[node]]\nname = \"x\"\nsql = \"SELECT 1 AS x\"\n",
    );
    let (_, err) = p.expect_exit(&["materialize", "clobber"], 2);
    assert!(
        err.contains("pipes/clobber.toml:1:")
            && err.contains("declared source `calls`")
            && err.contains("replace_source = true"),
        "{err}"
    );
    // Saying so is not enough when the columns differ.
    p.write(
        "pipes/clobber.toml",
        "materialize = { to = \"calls\", replace_source = true }\n[[node]]\nname = \"x\"\nsql = \"SELECT 1 AS x\"\n",
    );
    let (_, err) = p.expect_exit(&["materialize", "clobber"], 2);
    assert!(err.contains("columns"), "{err}");
    // A folder of files Sluice did not write (`reps` is plain Parquet) is refused too.
    p.write(
        "pipes/clobber.toml",
        "materialize = { to = \"notes\" }\n[[node]]\nname = \"x\"\nsql = \"SELECT 1 AS x\"\n",
    );
    std::fs::create_dir_all(p.store("staging").join("notes")).unwrap();
    std::fs::copy(
        std::fs::read_dir(p.store("staging").join("reps"))
            .unwrap()
            .flatten()
            .find(|e| e.path().extension().is_some_and(|x| x == "parquet"))
            .unwrap()
            .path(),
        p.store("staging").join("notes/part-0.parquet"),
    )
    .unwrap();
    let before_notes = stores(&p);
    let (_, err) = p.expect_exit(&["materialize", "clobber"], 2);
    assert!(err.contains("Sluice did not write"), "{err}");
    assert_eq!(stores(&p), before_notes);
    std::fs::remove_dir_all(p.store("staging").join("notes")).unwrap();
    std::fs::remove_file(p.path().join("pipes/clobber.toml")).unwrap();
    assert_eq!(stores(&p), before);
}

#[test]
fn deep_sql_is_refused_before_planning() {
    let p = example();
    // 3,000 chained `+` in a query, and 8,000 `OR`s: refused, never a stack overflow.
    let chain = format!("SELECT {}", vec!["1"; 3000].join(" + "));
    let (_, err) = p.expect_exit(&["query", &chain], 2);
    assert!(err.contains("limit of 2048"), "{err}");
    let ors = format!(
        "SELECT count(*) FROM calls WHERE {}",
        (0..8000)
            .map(|i| format!("call_id = {i}"))
            .collect::<Vec<_>>()
            .join(" OR ")
    );
    let file = p.path().join("ors.sql");
    std::fs::write(&file, &ors).unwrap();
    let (_, err) = p.expect_exit(&["query", "--file", file.to_str().unwrap()], 2);
    assert!(err.contains("operators"), "{err}");
    // Up to the limit, a long expression plans and runs (on the binary's large stacks).
    let near = format!("SELECT {} AS n", vec!["1"; 2000].join(" + "));
    let (out, _) = p.expect_exit(&["query", &near, "-f", "csv", "-q"], 0);
    assert_eq!(out.trim(), "n\n2000");
    // A pipe over the limit is refused when the project loads: validate and every gate
    // fail, and a server never starts with it.
    p.write(
        "pipes/deep.toml",
        &format!(
            "endpoint = true\n[[node]]\nname = \"x\"\nsql = \"{chain}\"\n",
            chain = chain
        ),
    );
    for args in [
        &["validate"][..],
        &["run", "deep"][..],
        &["serve", "--bind", "127.0.0.1:0"][..],
    ] {
        let (_, err) = p.expect_exit(args, 2);
        assert!(
            err.contains("pipes/deep.toml") && err.contains("node `x`") && err.contains("limit"),
            "{args:?}: {err}"
        );
    }
    // So is a pipe of too many nested nodes.
    let mut nodes = String::from("[[node]]\nname = \"n0\"\nsql = \"SELECT 1 AS x\"\n");
    for i in 1..200 {
        nodes.push_str(&format!(
            "[[node]]\nname = \"n{i}\"\nsql = \"SELECT x FROM n{}\"\n",
            i - 1
        ));
    }
    p.write("pipes/deep.toml", &nodes);
    let (_, err) = p.expect_exit(&["validate"], 2);
    assert!(err.contains("more than the limit of 128"), "{err}");
}

#[test]
fn settings_are_bounded_with_the_allowed_range() {
    let p = example();
    let toml = std::fs::read_to_string(p.path().join("sluice.toml")).unwrap();
    for (bad, needle) in [
        (
            "batch_size = 4611686018427387904",
            "`batch_size` is 4611686018427387904",
        ),
        (
            "target_partitions = 100000",
            "`target_partitions` is 100000: it must be from 1 to 1,024",
        ),
        ("memory_limit = \"99999999999TiB\"", "`memory_limit`"),
        ("memory_limit = \"1KiB\"", "outside the allowed range"),
    ] {
        p.write(
            "sluice.toml",
            &toml.replacen(
                "[environments.staging]",
                &format!("[environments.staging]\n{bad}"),
                1,
            ),
        );
        let (_, err) = p.expect_exit(&["envs"], 2);
        assert!(
            err.contains("sluice.toml:") && err.contains(needle),
            "{bad}: {err}"
        );
    }
}

#[test]
fn relative_store_folders_of_any_form() {
    let p = example();
    let toml = std::fs::read_to_string(p.path().join("sluice.toml")).unwrap();
    // `../` and `./` lead to the folder they name.
    let name = p.path().file_name().unwrap().to_str().unwrap().to_string();
    p.write(
        "sluice.toml",
        &toml.replacen(
            "\"data/staging\"",
            &format!("\"../{name}/./data/staging\""),
            1,
        ),
    );
    let (out, _) = p.expect_exit(
        &["query", "SELECT count(*) AS n FROM reps", "-f", "csv", "-q"],
        0,
    );
    assert!(out.starts_with("n\n"), "{out}");
}

/// A source `visits` in `date=` folders of production, with one file.
fn partitioned_source(p: &TestProject) {
    let dir = p.store("production").join("visits/date=2024-04-01");
    std::fs::create_dir_all(&dir).unwrap();
    let schema = std::sync::Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
        datafusion::arrow::datatypes::Field::new(
            "user_id",
            datafusion::arrow::datatypes::DataType::Int64,
            true,
        ),
        datafusion::arrow::datatypes::Field::new(
            "path",
            datafusion::arrow::datatypes::DataType::Utf8,
            true,
        ),
    ]));
    let batch = datafusion::arrow::record_batch::RecordBatch::try_new(
        schema.clone(),
        vec![
            std::sync::Arc::new(datafusion::arrow::array::Int64Array::from(vec![1, 2])),
            std::sync::Arc::new(datafusion::arrow::array::StringArray::from(vec![
                "/a", "/b",
            ])),
        ],
    )
    .unwrap();
    let file = std::fs::File::create(dir.join("part-0.parquet")).unwrap();
    let mut w = datafusion::parquet::arrow::ArrowWriter::try_new(file, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

#[test]
fn every_ingest_format_follows_one_rule_for_partition_columns() {
    let p = example();
    partitioned_source(&p);
    p.write("in/v.csv", "user_id,path\n3,/c\n");
    p.write("in/v.ndjson", "{\"user_id\": 3, \"path\": \"/c\"}\n");
    let before = stores(&p);
    // A file without the partition column is refused, with the same words, whatever
    // its format; nothing is written.
    for f in ["in/v.csv", "in/v.ndjson"] {
        let (_, err) = p.expect_exit(&["ingest", "visits", f, "--env", "production"], 2);
        assert!(
            err.contains("has no column `date`, a partition column of source `visits`")
                && err.contains("--partition date=VALUE"),
            "{f}: {err}"
        );
    }
    assert_eq!(stores(&p), before);
    // --partition fills it; a row with no value for it is kept out, never written to a
    // default folder.
    for f in ["in/v.csv", "in/v.ndjson"] {
        p.expect_exit(
            &[
                "ingest",
                "visits",
                f,
                "--env",
                "production",
                "--partition",
                "date=2024-04-02",
            ],
            0,
        );
    }
    let (out, _) = p.expect_exit(
        &[
            "query",
            "SELECT date, count(*) AS n FROM visits GROUP BY 1 ORDER BY 1",
            "--env",
            "production",
            "-f",
            "csv",
            "-q",
        ],
        0,
    );
    assert_eq!(out, "date,n\n2024-04-01,2\n2024-04-02,2\n");
    p.write("in/w.ndjson", "{\"user_id\": 4, \"path\": \"/d\", \"date\": \"2024-04-03\"}\n{\"user_id\": 5, \"path\": \"/e\"}\n");
    let (out, _) = p.expect_exit(
        &["ingest", "visits", "in/w.ndjson", "--env", "production"],
        0,
    );
    assert!(out.contains("rejected 1 rows"), "{out}");
    assert!(
        !p.store("production")
            .join("visits")
            .to_string_lossy()
            .is_empty()
    );
    let folders: Vec<String> = std::fs::read_dir(p.store("production").join("visits"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !folders
            .iter()
            .any(|f| f.contains("__HIVE_DEFAULT_PARTITION__")),
        "{folders:?}"
    );
    // A --partition that is not a partition column is refused.
    let (_, err) = p.expect_exit(
        &[
            "ingest",
            "visits",
            "in/v.csv",
            "--env",
            "production",
            "--partition",
            "day=1",
        ],
        2,
    );
    assert!(
        err.contains("`day` is not a partition column of source `visits`"),
        "{err}"
    );
}

#[test]
fn a_pipe_file_that_is_not_utf8_is_a_project_problem() {
    let p = example();
    std::fs::write(p.path().join("pipes/bad.toml"), [0xff, 0xfe, 0x00, 0x41]).unwrap();
    let (_, err) = p.expect_exit(&["validate"], 2);
    assert!(
        err.contains("pipes/bad.toml:1:1: the file is not UTF-8 text"),
        "{err}"
    );
}

#[test]
fn a_run_in_a_missing_store_creates_nothing_there() {
    let p = example();
    let toml = std::fs::read_to_string(p.path().join("sluice.toml")).unwrap();
    p.write(
        "sluice.toml",
        &toml.replacen("\"data/staging\"", "\"data/nowhere\"", 1),
    );
    let (_, err) = p.expect_exit(&["run", "top_reps"], 1);
    assert!(err.contains("has no data"), "{err}");
    assert!(!p.path().join("data/nowhere").exists());
}
