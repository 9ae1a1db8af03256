use crate::common::TestProject;

#[test]
fn envs_lists_environments() {
    let p = TestProject::example(0.02);
    p.sluice()
        .arg("envs")
        .assert()
        .success()
        .stdout(predicates::str::contains("production"));
}
