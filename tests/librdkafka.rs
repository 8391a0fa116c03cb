//! librdkafka's own test suite against a three-node Rill cluster: the test-runner is built
//! from the librdkafka source the rdkafka-sys crate ships (tests/librdkafka/build.sh) and
//! runs the tests listed below, which need only produce, consume, groups, offsets, admin
//! and idempotence. README "Compatibility" lists what is left out and why.

mod common;

use std::process::Command;
use std::time::Duration;

use common::with_cluster;

/// Tests of librdkafka 2.12.1's suite that run here (quick mode, no socket emulation).
const TESTS: &[&str] = &[
    "0001", "0002", "0003", "0004", "0005", "0007", "0008", "0012", "0013", "0014", "0015", "0017",
    "0018", "0019", "0020", "0021", "0022", "0026", "0028", "0029", "0030", "0031", "0033", "0034",
    "0035", "0036", "0038", "0040", "0041", "0042", "0044", "0045", "0048", "0050", "0051", "0054",
    "0056", "0057", "0059", "0060", "0061", "0063", "0064", "0065", "0067", "0069", "0070", "0073",
];

#[test]
fn librdkafkas_own_tests_pass() {
    let work = concat!(env!("CARGO_TARGET_TMPDIR"), "/librdkafka");
    let build = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/librdkafka/build.sh"
        ))
        .arg(work)
        .output()
        .unwrap_or_else(|e| panic!("running build.sh: {e}"));
    assert!(
        build.status.success(),
        "building librdkafka's test-runner failed (logs in {work}): {}",
        String::from_utf8_lossy(&build.stderr)
    );
    let tests_dir = String::from_utf8_lossy(&build.stdout).trim().to_string();
    // librdkafka's test clusters create topics with 4 partitions; its tests expect that.
    with_cluster(3, &["--num-partitions", "4"], |c| {
        c.wait_ready(Duration::from_secs(30))?;
        let conf = c.scratch("test.conf");
        std::fs::write(
            &conf,
            format!("bootstrap.servers={}\n", c.kafka_bootstrap()),
        )?;
        let out = Command::new(format!("{tests_dir}/test-runner"))
            .args(["-p1", "-Q", "-E", "-L"])
            .current_dir(&tests_dir)
            .env("TESTS", TESTS.join(","))
            .env("RDKAFKA_TEST_CONF", &conf)
            .env(
                "LD_LIBRARY_PATH",
                format!("{tests_dir}/../src:{tests_dir}/../src-cpp"),
            )
            .output()?;
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let clean: String = log
            .lines()
            .filter(|l| l.contains("FAILED") || l.contains("PASSED") || l.contains("failed at"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(out.status.success(), "librdkafka tests failed:\n{clean}");
        let passed = log.lines().filter(|l| l.contains("PASSED")).count();
        assert!(passed >= TESTS.len(), "only {passed} passed:\n{clean}");
        Ok(())
    });
}
